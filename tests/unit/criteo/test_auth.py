"""The token cache on real Redis: shared, renewed early, single-flight, compare-and-delete."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis

from worker.criteo.auth import IssuedToken, TokenCache
from worker.criteo.errors import AuthenticationFailed


class Issuer:
    """Stands in for the token endpoint; counts how often it is asked."""

    def __init__(self, expires_in: float = 900.0, delay: float = 0.0) -> None:
        self.issued = 0
        self.expires_in = expires_in
        self.delay = delay

    async def __call__(self) -> IssuedToken:
        self.issued += 1
        await asyncio.sleep(self.delay)
        return IssuedToken(f"token-{self.issued}", self.expires_in)


@pytest.fixture
async def aredis(redis_url: str, clean_redis: redis.Redis) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_the_token_is_cached_and_shared_with_its_ttl_ending_early(
    aredis: aioredis.Redis,
) -> None:
    issuer = Issuer(expires_in=900)
    one = TokenCache(aredis, "app", issuer, renew_before=60)
    two = TokenCache(aredis, "app", issuer, renew_before=60)
    assert await one.get() == "token-1"
    assert await two.get() == "token-1"
    assert issuer.issued == 1
    ttl = await aredis.pttl(one.key)
    assert 839_000 < ttl <= 840_000


async def test_a_short_lived_token_is_renewed_at_half_its_life(aredis: aioredis.Redis) -> None:
    cache = TokenCache(aredis, "app", Issuer(expires_in=100), renew_before=60)
    await cache.get()
    assert 49_000 < await aredis.pttl(cache.key) <= 50_000


async def test_one_renewal_at_a_time_across_processes(aredis: aioredis.Redis) -> None:
    issuer = Issuer(delay=0.2)
    caches = [TokenCache(aredis, "app", issuer, poll_interval=0.01) for _ in range(4)]
    tokens = await asyncio.gather(*(cache.get() for cache in caches for _ in range(5)))
    assert set(tokens) == {"token-1"}
    assert issuer.issued == 1
    assert await aredis.exists(caches[0].lock_key) == 0


async def test_discard_only_removes_the_token_that_failed(aredis: aioredis.Redis) -> None:
    issuer = Issuer()
    cache = TokenCache(aredis, "app", issuer)
    assert await cache.get() == "token-1"
    await cache.discard("token-1")
    assert await cache.get() == "token-2"
    await cache.discard("token-1")  # a late 401 for the old token must not drop the new one
    assert await cache.get() == "token-2"
    assert issuer.issued == 2


async def test_a_crashed_renewer_s_lock_expires_and_another_takes_over(
    aredis: aioredis.Redis,
) -> None:
    issuer = Issuer()
    cache = TokenCache(aredis, "app", issuer, poll_interval=0.01)
    await aredis.set(cache.lock_key, "someone-dead", px=150)
    assert await cache.get() == "token-1"
    assert issuer.issued == 1


async def test_a_failed_fetch_releases_the_lock(aredis: aioredis.Redis) -> None:
    async def refuse() -> IssuedToken:
        raise AuthenticationFailed("token endpoint refused the client credentials: HTTP 401")

    cache = TokenCache(aredis, "app", refuse)
    with pytest.raises(AuthenticationFailed):
        await cache.get()
    assert await aredis.exists(cache.lock_key) == 0


def test_reprs_hide_the_token() -> None:
    assert "secret-token" not in repr(IssuedToken("secret-token", 900))
