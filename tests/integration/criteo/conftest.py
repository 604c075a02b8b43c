"""A Criteo client as a worker process builds one, against the session's simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis

from worker.criteo.client import CriteoClient
from worker.criteo.limiter import RateLimiter
from worker.criteo.retry import RetryPolicy
from worker.criteo.transport import AiohttpTransport
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from worker.simulator.server import RunningSimulator

MakeClient = Callable[..., CriteoClient]


@pytest.fixture
async def aredis(redis_url: str, clean_redis: redis.Redis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def make_client(
    simulator: RunningSimulator,
    sim_control: SimulatorControl,
    session: aiohttp.ClientSession,
    aredis: aioredis.Redis,
) -> MakeClient:
    """A client as a worker process would build one; fast retries, a generous rate."""
    sim_control.configure(rate_limit_per_minute=6000)

    def make(**overrides: Any) -> CriteoClient:
        client_id = overrides.pop("client_id", DEFAULT_CLIENT_ID)
        options: dict[str, Any] = {
            "base_url": simulator.url,
            "version": "2026-07",
            "client_id": client_id,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "transport": AiohttpTransport(session),
            "redis": aredis,
            "limiter": RateLimiter(
                aredis, client_id, rate_per_minute=overrides.pop("rate", 6000), max_wait=5.0
            ),
            "retry": RetryPolicy(
                max_attempts=4, max_total_seconds=10, base_delay=0.01, max_delay=0.05
            ),
            "request_timeout": 5.0,
        }
        options.update(overrides)
        return CriteoClient(**options)

    return make
