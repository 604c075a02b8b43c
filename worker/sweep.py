"""The safety net: expired leases back to the queue, lost or parked chunks sent again, and
notifications whose message was lost sent after all.

With the broker's queues empty, any chunk first in line that was not just dispatched is sent
again: its message was lost (a Redis that restarted empty). With messages waiting, only chunks
not dispatched for a long time are, so a long night's queue is not flooded with copies.

Who sweeps: the workers, with no process of their own to forget. Every worker's main process
offers to sweep about twice an interval (`Sweeper`). A turn key in Redis that lives one interval
lets exactly one offer through per interval, whichever worker makes it, and a lock held for the
sweep's duration keeps two sweeps from ever overlapping, even one slower than the interval. A
worker that dies is simply no longer among those offering. `promobulk beat`, where it still
runs, sends the sweep task, which takes the same turn: an extra trigger, never a second sweeper.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker.config import Settings
from worker.db.chunks import ChunkRepository
from worker.db.notifications import NotificationRepository
from worker.db.records import Dispatch
from worker.health import SweepRun, record_sweep

log = logging.getLogger("promobulk.sweep")

TURN_KEY = "promobulk:sweep:turn"
LOCK_KEY = "promobulk:sweep:lock"
PRUNE_TURN_KEY = "promobulk:prune:turn"
# Deletes the lock only while it still holds our token: an expired lock taken over by another
# sweeper is never released by us.
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


@dataclass(frozen=True, slots=True)
class Swept:
    reclaimed: int
    dispatched: int
    notifications: int


def sweep(
    engine: Engine,
    settings: Settings,
    *,
    queue_idle: bool,
    dispatch: Dispatch,
    notify: Callable[[int], None],
) -> Swept:
    stale = settings.sweep_interval_seconds if queue_idle else settings.redispatch_after_seconds
    with Session(engine) as session:
        chunks = ChunkRepository(session)
        reclaimed = chunks.reclaim_expired()
        session.commit()
        due = chunks.runnable(stale_seconds=stale)
        session.commit()
        unsent = NotificationRepository(session).unsent(settings.sweep_interval_seconds)
    dispatch(due)
    for job_id in unsent:
        notify(job_id)
    return Swept(reclaimed, len(due), len(unsent))


def reclaim_every_lease(engine: Engine) -> int:
    """Every running chunk back to the queue at once, not when its lease expires: for a stack
    starting on a database of its own, which no worker can have been using meanwhile."""
    with Session(engine) as session:
        reclaimed = ChunkRepository(session).reclaim_expired(every_lease=True)
        session.commit()
    return reclaimed


def take_turn(client: redis.Redis, key: str, seconds: float, holder: str) -> bool:
    """True for the first caller in `seconds` (the key's life): this period's turn is theirs."""
    return bool(client.set(key, holder, nx=True, px=max(1, round(seconds * 1000))))


def lock_seconds(settings: Settings) -> float:
    """How long a sweep may hold the lock: far longer than any sweep takes, so the lock expires
    only when its holder died mid-sweep, and then the sweep stalls at most this long."""
    return max(60.0, 4 * settings.sweep_interval_seconds)


@contextmanager
def exclusive(client: redis.Redis, key: str, seconds: float) -> Iterator[bool]:
    """Hold `key` for the block if nobody else does; yields whether we hold it."""
    token = uuid.uuid4().hex
    held = bool(client.set(key, token, nx=True, px=round(seconds * 1000)))
    try:
        yield held
    finally:
        if held:
            client.eval(_RELEASE, 1, key, token)


def sweep_in_turn(
    client: redis.Redis, settings: Settings, by: str, run: Callable[[], Swept]
) -> Swept | None:
    """`run` the sweep if this period's turn is ours and no sweep is under way; recorded in
    Redis (`worker.health`) with who swept and when. None: not ours this time."""
    if not take_turn(client, TURN_KEY, settings.sweep_interval_seconds, by):
        return None
    with exclusive(client, LOCK_KEY, lock_seconds(settings)) as held:
        if not held:
            return None
        started = time.time()
        swept = run()
        record_sweep(client, SweepRun(by, started, time.time(), swept.reclaimed, swept.dispatched))
    if swept.reclaimed or swept.dispatched:
        log.info(
            "sweep: %d lease(s) reclaimed, %d chunk(s) dispatched",
            swept.reclaimed,
            swept.dispatched,
        )
    return swept


class Sweeper:
    """A thread in a worker's main process that calls `offer` about twice a sweep interval (with
    jitter, so workers started together do not offer together) until stopped. A failed offer
    (Redis or Postgres out of reach) is logged and tried again at the next tick."""

    def __init__(self, settings: Settings, offer: Callable[[], object]) -> None:
        self._interval = settings.sweep_interval_seconds
        self._offer = offer
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="promobulk-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                self._offer()
            except Exception as exc:  # an outage must not end the thread: the next tick retries
                log.warning("sweep not run: %s: %s", type(exc).__name__, exc)
            self._stopped.wait(self._interval * random.uniform(0.4, 0.6))
