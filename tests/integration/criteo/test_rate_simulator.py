"""The shared limiter in real time against the simulator's sliding 60-second window.

Two clients with their own limiter objects and sessions stand for two worker processes; only
Redis is shared, as between hosts. This runs for a little over a minute: a sliding window can
only be overrun by a run longer than the window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis

from worker.criteo.client import CriteoClient
from worker.criteo.limiter import RateLimiter
from worker.criteo.retry import RetryPolicy
from worker.criteo.transport import AiohttpTransport
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Scenario
from worker.simulator.server import RunningSimulator

LIMIT = 600
RUN_SECONDS = 65.0


@pytest.fixture
async def aredis(redis_url: str, clean_redis: redis.Redis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def process(url: str, r: aioredis.Redis, line_item_id: int, deadline: float) -> int:
    """One worker process at concurrency 4, calling until the deadline."""
    async with aiohttp.ClientSession() as session:
        client = CriteoClient(
            base_url=url,
            version="2026-07",
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
            transport=AiohttpTransport(session),
            redis=r,
            limiter=RateLimiter(r, DEFAULT_CLIENT_ID, rate_per_minute=LIMIT),
            retry=RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.5),
            request_timeout=5.0,
        )

        async def worker() -> None:
            while time.time() < deadline:
                await client.get_products(line_item_id)

        await asyncio.gather(*(worker() for _ in range(4)))
        return client.calls["get"]


async def test_two_processes_reach_95_percent_of_the_limit_without_a_429(
    simulator: RunningSimulator,
    sim_control: SimulatorControl,
    sim_scenario: Scenario,
    aredis: aioredis.Redis,
) -> None:
    sim_control.configure(rate_limit_per_minute=LIMIT)
    line_item_id = sim_scenario.accounts[0].line_items[0].id
    deadline = time.time() + RUN_SECONDS
    sent = await asyncio.gather(
        *(process(simulator.url, aredis, line_item_id, deadline) for _ in range(2))
    )
    summary = sim_control.requests(limit=100_000)
    gets = [e for e in summary["log"] if e["endpoint"] == "get"]
    assert summary["by_endpoint"]["get"] == {"200": sum(sent)}
    achieved = (len(gets) - 1) / (gets[-1]["t"] - gets[0]["t"]) * 60
    print(f"\n{len(gets)} calls, achieved {achieved:.1f}/min of {LIMIT} ({achieved / LIMIT:.1%})")
    assert achieved >= 0.95 * LIMIT
