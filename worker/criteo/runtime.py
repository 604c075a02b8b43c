"""The client stack a process keeps for its whole life: one aiohttp session, one async Redis."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import redis.asyncio as aioredis

from worker.config import Settings
from worker.criteo.client import CriteoClient


@dataclass
class ClientRuntime:
    session: aiohttp.ClientSession
    redis: aioredis.Redis
    client: CriteoClient

    @classmethod
    async def open(cls, settings: Settings) -> ClientRuntime:
        """Call from inside the event loop that will use it (aiohttp binds to that loop)."""
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=32, ttl_dns_cache=300),
            raise_for_status=False,
        )
        redis = aioredis.Redis.from_url(settings.redis_url)
        return cls(session, redis, CriteoClient.from_settings(settings, session, redis))

    async def aclose(self) -> None:
        await self.session.close()
        await self.redis.aclose()
