"""The HTTP-level retry policy: exponential backoff with full jitter, capped in attempts and time.

Only `TransientError` is retried. When the budget is spent the error is raised (marked
`exhausted`) so the runner can park the chunk: the client never sleeps for minutes.
Clock, sleep and random are injectable so the policy is tested without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from worker.criteo.errors import TransientError
from worker.domain.backoff import backoff

T = TypeVar("T")

log = logging.getLogger("promobulk.criteo")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    max_total_seconds: float = 90.0
    base_delay: float = 0.5
    max_delay: float = 15.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    rand: Callable[[], float] = field(default=random.random, repr=False)

    def backoff(self, retry_number: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(n-1))] for the n-th retry."""
        return backoff(retry_number - 1, base=self.base_delay, cap=self.max_delay, rand=self.rand)

    async def run(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Call `attempt` until it returns, fails permanently, or the budget is spent."""
        started = self.clock()
        number = 0
        last_status: int | None = None
        while True:
            number += 1
            try:
                return await attempt()
            except TransientError as exc:
                exc.attempts = number
                last_status = exc.last_status = exc.status or last_status
                if exc.exhausted:
                    raise
                delay = self.backoff(number)
                elapsed = self.clock() - started
                spent = number >= self.max_attempts or (
                    elapsed + max(delay, exc.retry_after or 0.0) > self.max_total_seconds
                )
                if spent:
                    exc.exhausted = True
                    raise
                log.info(
                    "retrying in %.2fs after attempt %d of %d failed: %s: %s",
                    delay,
                    number,
                    self.max_attempts,
                    type(exc).__name__,
                    exc,
                )
                await self.sleep(delay)
