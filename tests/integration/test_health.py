"""The health answers against real Redis and a real broker: what the sweep and the client
record comes back, and no worker means an empty list, not an error."""

from __future__ import annotations

import asyncio
import time

import redis
import redis.asyncio as aioredis

from tests.jobs import settings_for
from worker import health
from worker.criteo.usage import UsageRecorder, read_usage


def test_calls_a_minute_and_the_last_429_are_read_back(
    clean_redis: redis.Redis, redis_url: str
) -> None:
    now = time.time()

    async def record() -> None:
        client = aioredis.Redis.from_url(redis_url)
        recorder = UsageRecorder(client, "app-1")
        for status in (200, 200, 429, 204):
            await recorder.record(status, now=now)
        await recorder.record(200, now=now - 60)
        await client.aclose()

    asyncio.run(record())
    usage = read_usage(clean_redis, "app-1", minutes=3)
    assert usage.per_minute[-2:] == [1, 4]
    assert usage.last_429 is not None
    assert abs(usage.last_429.timestamp() - now) < 0.01
    assert read_usage(clean_redis, "other-app").per_minute == [0] * 10


def test_the_sweep_leaves_its_time_and_who_ran_it(clean_redis: redis.Redis) -> None:
    assert health.sweep_last_run(clean_redis) is None
    assert health.sweep_runs(clean_redis) == []
    first = health.SweepRun("host-a:12", 1_799_999_999.5, 1_800_000_000, 1, 2)
    second = health.SweepRun("host-b:34", 1_800_000_001, 1_800_000_001.25, 0, 0)
    health.record_sweep(clean_redis, first)
    health.record_sweep(clean_redis, second)
    swept = health.sweep_last_run(clean_redis)
    assert swept is not None
    assert swept.timestamp() == 1_800_000_001.25
    assert health.sweep_runs(clean_redis) == [second, first]


def test_no_worker_answers_an_empty_list(clean_redis: redis.Redis, redis_url: str) -> None:
    report = health.check(settings_for(REDIS_URL=redis_url), ping_timeout=0.5)
    assert report.workers == []
    assert report.queue_depth == 0
    assert report.sweep_last_run is None
    assert report.usage is not None


def test_a_broker_out_of_reach_is_unknown_not_an_error() -> None:
    report = health.check(settings_for(REDIS_URL="redis://127.0.0.1:9/0"), ping_timeout=0.5)
    assert (report.workers, report.queue_depth, report.usage) == (None, None, None)
