"""The health strip's figures, kept fresh off the request path.

`worker.health.check` pings the workers (a one-second broadcast) and reads Redis: too slow to
do per page. The console keeps the last answer and, when it is older than `max_age`, starts one
refresh in a thread while the page is served with what it has (stale while revalidating).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from worker.health import Health

log = logging.getLogger("promobulk.console")


class HealthCache:
    def __init__(self, probe: Callable[[], Health], max_age: float = 5.0) -> None:
        self._probe = probe
        self._max_age = max_age
        self._last: Health | None = None
        self._at = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    def current(self) -> Health | None:
        """The latest figures (None before the first answer); starts a refresh when stale."""
        stale = time.monotonic() - self._at > self._max_age
        if stale and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
        return self._last

    async def _refresh(self) -> None:
        try:
            self._last = await asyncio.to_thread(self._probe)
        except Exception:  # a probe that breaks shows as "unknown", never as a broken page
            log.exception("health check failed")
        self._at = time.monotonic()

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            await asyncio.gather(self._refreshing, return_exceptions=True)
