"""Criteo's rate limit: N calls per sliding 60 s window per client_id (token calls not counted)."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

WINDOW_SECONDS = 60.0


@dataclass(slots=True)
class Quota:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_epoch),
        }


class RateLimiter:
    """One deque of call times per client; each call costs amortised O(1)."""

    def __init__(self) -> None:
        self._calls: dict[str, deque[float]] = {}

    def take(self, client_id: str, limit: int) -> Quota:
        """Count one call if the window has room; a refused call is not counted."""
        now = time.monotonic()
        calls = self._window(client_id, now)
        allowed = len(calls) < limit
        if allowed:
            calls.append(now)
        return self._quota(allowed, calls, limit, now)

    def peek(self, client_id: str | None, limit: int) -> Quota:
        """The quota without counting a call (token calls, and calls refused before auth)."""
        now = time.monotonic()
        return self._quota(True, self._window(client_id or "", now), limit, now)

    def _window(self, client_id: str, now: float) -> deque[float]:
        calls = self._calls.setdefault(client_id, deque())
        while calls and calls[0] <= now - WINDOW_SECONDS:
            calls.popleft()
        return calls

    @staticmethod
    def _quota(allowed: bool, calls: deque[float], limit: int, now: float) -> Quota:
        """`x-ratelimit-reset` is when the oldest counted call leaves the window (epoch seconds)."""
        reset = time.time() + (calls[0] + WINDOW_SECONDS - now if calls else 0.0)
        return Quota(allowed, limit, max(0, limit - len(calls)), math.ceil(reset))
