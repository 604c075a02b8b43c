"""The limiter's Lua script on real Redis, driven by an injected clock (virtual time)."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis

from worker.criteo.errors import RateLimited
from worker.criteo.limiter import RateLimiter
from worker.domain.enums import Priority

HIGH, NORMAL = Priority.HIGH, Priority.NORMAL


def near(expected: object, abs: float = 1e-4) -> object:
    """Slots are epoch times in ms: a microsecond is the precision that survives the round trip."""
    return pytest.approx(expected, abs=abs)


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
async def aredis(redis_url: str, clean_redis: redis.Redis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def make(r: aioredis.Redis, clock: Clock, rate: float = 600, **kw: float) -> RateLimiter:
    kw.setdefault("safety_margin", 0.0)
    kw.setdefault("high_share", 0.1)
    return RateLimiter(r, "app", rate_per_minute=rate, clock=clock, sleep=clock.sleep, **kw)


async def test_slots_are_evenly_spaced_across_processes(aredis: aioredis.Redis) -> None:
    clock = Clock()
    one, two = make(aredis, clock, safety_margin=0.04), make(aredis, clock, safety_margin=0.04)
    slots = [await (one if i % 2 else two).reserve() for i in range(6)]
    gap = 60 / (600 * 0.96)
    assert slots[0] == near(clock.now)
    assert [b - a for a, b in itertools.pairwise(slots)] == near([gap] * 5)


async def test_acquire_sleeps_until_its_slot_and_idle_time_builds_no_burst(
    aredis: aioredis.Redis,
) -> None:
    clock = Clock()
    limiter = make(aredis, clock)
    await limiter.acquire()
    await limiter.acquire()
    assert clock.slept == near([0.1])
    clock.now += 3600
    first, second = await limiter.reserve(), await limiter.reserve()
    assert second - first == near(0.1)


async def test_high_priority_share_is_kept_while_high_traffic_runs(
    aredis: aioredis.Redis,
) -> None:
    clock = Clock()
    limiter = make(aredis, clock, high_share=0.2)
    normals = [await limiter.reserve(NORMAL) for _ in range(4)]
    assert normals[-1] - normals[0] == near(0.3)  # full rate while no high traffic
    high = await limiter.reserve(HIGH)
    assert high == near(clock.now)  # its own bucket: not behind the normal queue
    more = [await limiter.reserve(NORMAL) for _ in range(3)]
    assert more[2] - more[1] == near(0.1 / 0.8)  # normals now get 80%
    highs = [await limiter.reserve(HIGH) for _ in range(3)]
    assert highs[0] < more[-1] + 0.2
    clock.now += 61  # high traffic gone: the whole rate is normal again
    a, b = await limiter.reserve(NORMAL), await limiter.reserve(NORMAL)
    assert b - a == near(0.1)


async def test_no_high_share_means_one_queue(aredis: aioredis.Redis) -> None:
    clock = Clock()
    limiter = make(aredis, clock, high_share=0.0)
    a = await limiter.reserve(NORMAL)
    b = await limiter.reserve(HIGH)
    assert b - a == near(0.1)


async def test_a_429_blocks_every_process_and_cuts_the_rate_once_a_minute(
    aredis: aioredis.Redis,
) -> None:
    clock = Clock()
    one, two = make(aredis, clock), make(aredis, clock)
    in_flight = [await one.reserve() for _ in range(3)]
    clock.now = in_flight[-1] + 0.05
    await one.observe(in_flight[0], 429, {})
    await one.observe(in_flight[1], 429, {})  # booked before the block: no new information
    state = await two.state()
    assert state.factor == near(0.8)
    assert state.blocked_until == near(clock.now + 2.0)
    slot = await two.reserve()
    assert slot == near(clock.now + 2.0)
    clock.now = slot + 0.01
    await two.observe(slot, 429, {})  # sent after the block: block longer, same cut this minute
    state = await one.state()
    assert state.factor == near(0.8, abs=0.001)
    assert state.blocked_until == near(clock.now + 4.0)
    a, b = await one.reserve(), await one.reserve()
    assert b - a == near(0.1 / 0.8, abs=0.001)
    clock.now = b + 61
    await one.observe(b, 429, {})
    assert (await one.state()).factor == near(0.64, abs=0.005)


async def test_a_429_blocks_until_the_announced_reset(aredis: aioredis.Redis) -> None:
    clock = Clock()
    limiter = make(aredis, clock)
    slot = await limiter.reserve()
    await limiter.observe(slot, 429, {"x-ratelimit-reset": str(math.ceil(clock.now + 9))})
    assert (await limiter.state()).blocked_until == near(math.ceil(clock.now + 9))


async def test_factor_recovers_slowly(aredis: aioredis.Redis) -> None:
    clock = Clock()
    limiter = make(aredis, clock, decrease=0.5, min_factor=0.6)
    slot = await limiter.reserve()
    await limiter.observe(slot, 429, {})
    assert (await limiter.state()).factor == near(0.6)  # clamped at the minimum
    clock.now += 60
    await limiter.reserve()
    assert (await limiter.state()).factor == near(0.61)
    clock.now += 6000
    await limiter.reserve()
    assert (await limiter.state()).factor == near(1.0)


async def test_a_lower_server_limit_is_adopted(aredis: aioredis.Redis) -> None:
    clock = Clock()
    limiter = make(aredis, clock)
    slot = await limiter.reserve()
    await limiter.observe(slot, 200, {"x-ratelimit-limit": "300", "x-ratelimit-remaining": "250"})
    assert (await limiter.state()).server_limit == 300
    a, b = await limiter.reserve(), await limiter.reserve()
    assert b - a == near(0.2)


async def test_low_remaining_halves_the_rate_until_reset_and_zero_waits(
    aredis: aioredis.Redis,
) -> None:
    clock = Clock()
    limiter = make(aredis, clock, low_water=0.01)
    slot = await limiter.reserve()
    reset = str(math.ceil(clock.now + 4))
    await limiter.observe(slot, 200, {"x-ratelimit-remaining": "5", "x-ratelimit-reset": reset})
    a, b = await limiter.reserve(), await limiter.reserve()
    assert b - a == near(0.2)
    await limiter.observe(b, 200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset})
    assert (await limiter.state()).blocked_until == near(float(reset))
    clock.now = float(reset) + 0.5
    c, d = await limiter.reserve(), await limiter.reserve()
    assert d - c == near(0.1)


async def test_plenty_remaining_changes_nothing(aredis: aioredis.Redis) -> None:
    clock = Clock()
    limiter = make(aredis, clock)
    slot = await limiter.reserve()
    reset = str(math.ceil(clock.now + 60))
    await limiter.observe(slot, 200, {"x-ratelimit-remaining": "12", "x-ratelimit-reset": reset})
    a, b = await limiter.reserve(), await limiter.reserve()
    assert b - a == near(0.1)


async def test_a_slot_too_far_away_raises_and_books_nothing(aredis: aioredis.Redis) -> None:
    clock = Clock()
    limiter = make(aredis, clock, max_wait=5.0)
    slot = await limiter.reserve()
    await limiter.observe(slot, 429, {"x-ratelimit-reset": str(clock.now + 20)})
    before = await limiter.state()
    with pytest.raises(RateLimited) as caught:
        await limiter.reserve()
    assert caught.value.retry_after == near(20, abs=1)
    assert await limiter.state() == before


async def test_budgets_are_per_client_id(aredis: aioredis.Redis) -> None:
    clock = Clock()
    a = RateLimiter(aredis, "a", rate_per_minute=60, clock=clock, sleep=clock.sleep)
    b = RateLimiter(aredis, "b", rate_per_minute=60, clock=clock, sleep=clock.sleep)
    await a.reserve()
    assert await b.reserve() == near(clock.now)


class SlidingWindowServer:
    """Criteo's limit as the simulator models it: N calls per sliding 60 s; refusals not counted."""

    def __init__(self, limit: int, send_limit_header: bool) -> None:
        self.limit = limit
        self.calls: deque[float] = deque()
        self.accepted: list[float] = []
        self.refused = 0
        self.send_limit_header = send_limit_header

    def take(self, now: float) -> tuple[int, dict[str, str]]:
        while self.calls and self.calls[0] <= now - 60:
            self.calls.popleft()
        allowed = len(self.calls) < self.limit
        if allowed:
            self.calls.append(now)
            self.accepted.append(now)
        else:
            self.refused += 1
        headers = {
            "x-ratelimit-remaining": str(max(0, self.limit - len(self.calls))),
            "x-ratelimit-reset": str(math.ceil(self.calls[0] + 60 if self.calls else now)),
        }
        if self.send_limit_header:
            headers["x-ratelimit-limit"] = str(self.limit)
        return (200 if allowed else 429), headers


async def run_fleet(
    r: aioredis.Redis,
    server: SlidingWindowServer,
    *,
    configured: int,
    processes: int,
    concurrency: int,
    seconds: float,
    seed: int = 7,
) -> None:
    """Processes x concurrency workers calling in a loop, in virtual time ordered by a heap."""
    rng = random.Random(seed)
    clock = Clock()
    start = clock.now
    limiters = [
        RateLimiter(r, "fleet", rate_per_minute=configured, clock=clock, sleep=clock.sleep)
        for _ in range(processes)
    ]
    events: list[tuple[float, int, str, int, float]] = []
    for w in range(processes * concurrency):
        heapq.heappush(events, (start + rng.uniform(0, 0.5), w, "reserve", w, 0.0))
    seq = processes * concurrency
    while events:
        at, _, kind, worker, slot = heapq.heappop(events)
        clock.now = at
        limiter = limiters[worker % processes]
        seq += 1
        if kind == "reserve":
            if at - start > seconds:
                continue
            try:
                booked = await limiter.reserve()
            except RateLimited as exc:  # a real worker would park the chunk
                heapq.heappush(events, (at + (exc.retry_after or 1), seq, "reserve", worker, 0))
                continue
            heapq.heappush(events, (booked + rng.uniform(0.0, 0.02), seq, "arrive", worker, booked))
        elif kind == "arrive":
            status, headers = server.take(at)
            latency = rng.uniform(0.02, 0.3)
            clock.now = at + latency
            await limiter.observe(slot, status, headers)
            think = rng.uniform(0.0, 0.05)
            heapq.heappush(events, (at + latency + think, seq, "reserve", worker, 0.0))


async def test_two_processes_reach_95_percent_without_a_429(aredis: aioredis.Redis) -> None:
    server = SlidingWindowServer(600, send_limit_header=True)
    await run_fleet(aredis, server, configured=600, processes=2, concurrency=4, seconds=180)
    achieved = (len(server.accepted) - 1) / (server.accepted[-1] - server.accepted[0]) * 60
    assert server.refused == 0
    assert achieved >= 0.95 * 600


@pytest.mark.parametrize("limit_header", [True, False])
async def test_a_real_limit_20_percent_lower_is_found_and_held(
    aredis: aioredis.Redis, limit_header: bool
) -> None:
    server = SlidingWindowServer(480, send_limit_header=limit_header)
    await run_fleet(aredis, server, configured=600, processes=2, concurrency=4, seconds=900)
    last_ten_minutes = [t for t in server.accepted if t >= server.accepted[-1] - 600]
    rate = len(last_ten_minutes) / 10
    assert server.refused <= (0 if limit_header else 15)  # without the header: one burst in flight
    assert rate >= (0.95 if limit_header else 0.9) * 480
