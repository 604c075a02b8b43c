from __future__ import annotations

import time

import pytest

from worker.simulator import ratelimit
from worker.simulator.ratelimit import RateLimiter


def test_counts_per_client_and_refusals_do_not_count() -> None:
    limiter = RateLimiter()
    assert [limiter.take("a", 2).allowed for _ in range(3)] == [True, True, False]
    assert limiter.take("b", 2).remaining == 1
    assert limiter.peek("a", 2).remaining == 0


class _Clock:
    """`time` as the rate limiter sees it, with a monotonic clock the test moves."""

    def __init__(self, now: list[float]) -> None:
        self._now = now

    def monotonic(self) -> float:
        return self._now[0]

    def time(self) -> float:
        return time.time()


def test_window_slides(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(ratelimit, "time", _Clock(now))
    limiter = RateLimiter()
    limiter.take("a", 2)
    now[0] += 30
    limiter.take("a", 2)
    assert not limiter.take("a", 2).allowed
    now[0] += 30.5  # the first call left the window
    quota = limiter.take("a", 2)
    assert quota.allowed
    assert quota.remaining == 0
    assert quota.reset_epoch >= int(time.time()) + 29


def test_headers() -> None:
    quota = RateLimiter().take("a", 250)
    headers = quota.headers()
    assert headers["x-ratelimit-limit"] == "250"
    assert headers["x-ratelimit-remaining"] == "249"
    assert int(headers["x-ratelimit-reset"]) >= int(time.time()) + 59
