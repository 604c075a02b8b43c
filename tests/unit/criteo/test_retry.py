"""The retry policy with an injected clock, sleep and random: no real waiting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from worker.criteo.errors import (
    RateLimited,
    ServerError,
    TransientError,
    ValidationRejected,
)
from worker.criteo.retry import RetryPolicy


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(fake: FakeTime, **overrides: float) -> RetryPolicy:
    settings: dict[str, float] = {
        "max_attempts": 5,
        "max_total_seconds": 60.0,
        "base_delay": 1.0,
        "max_delay": 10.0,
    }
    settings.update(overrides)
    return RetryPolicy(
        max_attempts=int(settings["max_attempts"]),
        max_total_seconds=settings["max_total_seconds"],
        base_delay=settings["base_delay"],
        max_delay=settings["max_delay"],
        clock=fake.clock,
        sleep=fake.sleep,
        rand=lambda: 1.0,
    )


def failing(
    errors: list[Exception], result: str = "ok"
) -> tuple[Callable[[], Awaitable[str]], dict[str, int]]:
    """An attempt that raises `errors` in turn, then returns `result`; and its call count."""
    calls = {"n": 0}

    async def attempt() -> str:
        calls["n"] += 1
        if errors:
            raise errors.pop(0)
        return result

    return attempt, calls


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    fake = FakeTime()
    top = policy(fake)
    assert [top.backoff(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    bottom = RetryPolicy(base_delay=1.0, max_delay=10.0, rand=lambda: 0.0)
    assert bottom.backoff(4) == 0.0
    half = RetryPolicy(base_delay=1.0, max_delay=10.0, rand=lambda: 0.5)
    assert half.backoff(3) == 2.0


async def test_transient_failures_are_retried_until_success() -> None:
    fake = FakeTime()
    attempt, calls = failing([ServerError("a", status=503), ServerError("b", status=502)])
    assert await policy(fake).run(attempt) == "ok"
    assert calls["n"] == 3
    assert fake.sleeps == [1.0, 2.0]


async def test_attempt_cap_raises_the_last_error_marked_exhausted() -> None:
    fake = FakeTime()
    attempt, calls = failing([ServerError(str(i), status=500 + i) for i in range(10)])
    with pytest.raises(ServerError) as caught:
        await policy(fake, max_attempts=3).run(attempt)
    assert calls["n"] == 3
    assert caught.value.attempts == 3
    assert caught.value.last_status == 502
    assert caught.value.exhausted
    assert fake.sleeps == [1.0, 2.0]


async def test_time_cap_stops_before_sleeping_past_the_budget() -> None:
    fake = FakeTime()
    attempt, calls = failing([RateLimited("x", status=429) for _ in range(10)])
    with pytest.raises(RateLimited) as caught:
        await policy(fake, max_total_seconds=5.0, max_attempts=10).run(attempt)
    # sleeps 1 + 2 = 3 s; the next backoff (4 s) would end at 7 s > 5 s
    assert fake.sleeps == [1.0, 2.0]
    assert calls["n"] == 3
    assert caught.value.attempts == 3


async def test_permanent_errors_are_not_retried() -> None:
    fake = FakeTime()
    attempt, calls = failing([ValidationRejected("bad", status=400)])
    with pytest.raises(ValidationRejected):
        await policy(fake).run(attempt)
    assert calls["n"] == 1
    assert fake.sleeps == []


async def test_an_error_already_exhausted_by_an_inner_policy_is_not_retried_again() -> None:
    fake = FakeTime()
    inner = ServerError("token endpoint down", status=503)
    inner.exhausted = True
    attempt, calls = failing([inner])
    with pytest.raises(ServerError):
        await policy(fake).run(attempt)
    assert calls["n"] == 1


async def test_a_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    fake = FakeTime()
    attempt, calls = failing([RateLimited("blocked", retry_after=120.0)])
    with pytest.raises(TransientError):
        await policy(fake, max_total_seconds=60.0).run(attempt)
    assert calls["n"] == 1
    assert fake.sleeps == []


async def test_the_last_http_status_survives_a_failure_without_one() -> None:
    fake = FakeTime()
    attempt, _ = failing([RateLimited("429", status=429), RateLimited("limiter", retry_after=99)])
    with pytest.raises(RateLimited) as caught:
        await policy(fake).run(attempt)
    assert caught.value.last_status == 429
    assert caught.value.attempts == 2
