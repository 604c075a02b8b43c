"""The client stack a process keeps for its whole life: one aiohttp session, one async Redis."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from worker.config import Settings
from worker.criteo.client import CriteoClient
from worker.criteo.transport import AiohttpSession, open_session


@dataclass
class ClientRuntime:
    session: AiohttpSession
    redis: aioredis.Redis
    client: CriteoClient

    @classmethod
    async def open(cls, settings: Settings) -> ClientRuntime:
        """Call from inside the event loop that will use it (aiohttp binds to that loop)."""
        session = open_session()
        redis = aioredis.Redis.from_url(settings.redis_url)
        return cls(session, redis, CriteoClient.from_settings(settings, session, redis))

    async def aclose(self) -> None:
        await self.session.close()
        await self.redis.aclose()
