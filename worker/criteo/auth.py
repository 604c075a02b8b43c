"""The OAuth access token, cached in Redis and shared by every process that uses a client id.

The cached entry's Redis TTL ends `renew_before` seconds before the token does, so a token read
from the cache always has that much life left and renewal happens early, never late. Renewal
is single-flight across processes: whoever takes the Redis lock fetches, the rest poll the
cache. A 401 drops the cached token only if it is still the one that failed (compare and
delete), so a burst of 401s for one stale token causes one renewal, not many.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: float

    def __repr__(self) -> str:
        return f"IssuedToken(access_token=<hidden>, expires_in={self.expires_in!r})"


class TokenCache:
    def __init__(
        self,
        redis: aioredis.Redis,
        client_id: str,
        fetch: Callable[[], Awaitable[IssuedToken]],
        *,
        renew_before: float = 60.0,
        lock_timeout: float = 120.0,
        poll_interval: float = 0.05,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._redis = redis
        self._fetch = fetch
        self._renew_before = renew_before
        self._lock_timeout_ms = int(lock_timeout * 1000)
        self._poll_interval = poll_interval
        self._sleep = sleep
        self._compare_and_delete = redis.register_script(_COMPARE_AND_DELETE)
        self._local = asyncio.Lock()
        self.key = f"promobulk:criteo:token:{client_id}"
        self.lock_key = f"promobulk:criteo:token-lock:{client_id}"

    def __repr__(self) -> str:
        return f"TokenCache(key={self.key!r})"

    async def get(self) -> str:
        """A token with at least `renew_before` seconds of life left."""
        cached = await self._redis.get(self.key)
        if cached is not None:
            return _decode(cached)
        async with self._local:
            return await self._renew()

    async def discard(self, failed: str) -> None:
        """Forget `failed` after a 401, unless someone has already replaced it."""
        await self._compare_and_delete(keys=[self.key], args=[failed])

    async def _renew(self) -> str:
        owner = secrets.token_hex(8)
        while True:
            cached = await self._redis.get(self.key)
            if cached is not None:
                return _decode(cached)
            if await self._redis.set(self.lock_key, owner, nx=True, px=self._lock_timeout_ms):
                try:
                    return await self._fetch_and_store()
                finally:
                    await self._compare_and_delete(keys=[self.lock_key], args=[owner])
            await self._sleep(self._poll_interval)

    async def _fetch_and_store(self) -> str:
        cached = await self._redis.get(self.key)
        if cached is not None:
            return _decode(cached)
        issued = await self._fetch()
        lifetime = issued.expires_in
        ttl = lifetime - self._renew_before if lifetime > 2 * self._renew_before else lifetime / 2
        await self._redis.set(self.key, issued.access_token, px=max(1, int(ttl * 1000)))
        return issued.access_token


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
