"""What the app's calls to the API look like from every worker at once: calls per minute and
the last 429, kept in Redis beside the limiter, for the console's health strip and `doctor`.

One pipelined round trip per call (an INCR of the minute's counter, and the time of a 429), a
small cost next to the limiter's own script; counters expire after an hour.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
import redis.asyncio as aioredis

KEEP_SECONDS = 3600


def _key(client_id: str) -> str:
    return f"promobulk:criteo:usage:{client_id}"


class UsageRecorder:
    def __init__(self, redis_client: aioredis.Redis, client_id: str) -> None:
        self._redis = redis_client
        self._key = _key(client_id)

    async def record(self, status: int | str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        minute = int(now // 60)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(self._key, f"m:{minute}", 1)
            if status == 429:
                pipe.hset(self._key, "last_429", f"{now:.3f}")
            pipe.expire(self._key, KEEP_SECONDS)
            await pipe.execute()


@dataclass(frozen=True, slots=True)
class Usage:
    """Calls in each of the last minutes, oldest first (the current minute last, partial), and
    when the API last answered 429."""

    per_minute: list[int]
    last_429: datetime | None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def read_usage(client: redis.Redis, client_id: str, minutes: int = 10) -> Usage:
    fields = {_text(k): _text(v) for k, v in client.hgetall(_key(client_id)).items()}
    current = int(time.time() // 60)
    per_minute = [int(fields.get(f"m:{m}", 0)) for m in range(current - minutes + 1, current + 1)]
    last = fields.get("last_429")
    return Usage(per_minute, None if last is None else datetime.fromtimestamp(float(last), UTC))
