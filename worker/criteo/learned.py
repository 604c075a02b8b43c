"""What the API has shown of its unpublished limits, remembered in Redis by every process.

Criteo documents no cap on the ids of a write, no largest page, no largest body and no shape for
refusals it does not name. Each is learned from the answer that reveals it (an `exceeded-ids-cap`
problem, a 413, a page's size, a 400 to a `limit`, a code repeated among anonymous problems) and
kept per client id, API version and endpoint, next to the token and the rate limiter: one
refused call teaches every worker process, and later batches are cut before they are sent.

Each fact is a key of its own with its own expiry:
- caps on writes (ids, bytes), the largest `limit` a GET takes, the refusal style: 24 hours.
  A limit belongs to the API's deployment and changes rarely (a new version gets new keys);
  forgetting it daily costs at most one refused call per endpoint a night, while never
  forgetting would keep a lifted limit costing calls for good;
- the largest page a GET has answered: one hour. It lets a page without `meta.count` that is
  shorter end the paging without one more call; believed past a cap the server lowered, it
  would end a paging early, so it must not last.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from worker.criteo.errors import error_for_redis

X = TypeVar("X")

DAY_MS = 24 * 3600 * 1000
HOUR_MS = 3600 * 1000
#: A body's bytes besides its entries: `{"data":[]}`.
BODY_OVERHEAD = 11

_UPDATE = """
local old = tonumber(redis.call('GET', KEYS[1]))
local new = tonumber(ARGV[1])
local how = ARGV[2]
if old == nil or how == 'set' or (how == 'min' and new < old) or (how == 'max' and new > old) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class WriteLimits:
    """How far one write request may go: ids, and body bytes (a target while being learned)."""

    max_ids: int | None = None
    max_bytes: int | None = None

    def split(self, items: Sequence[X], weigh: Callable[[X], int]) -> list[list[X]]:
        """`items` in order, in as few parts as the limits allow, of even size; `weigh` is an
        item's share of the body in bytes."""
        if not items:
            return []
        parts = math.ceil(len(items) / self.max_ids) if self.max_ids else 1
        sizes = [weigh(item) for item in items] if self.max_bytes else [0] * len(items)
        budget = self.max_bytes or 0
        if budget:
            parts = max(parts, math.ceil((BODY_OVERHEAD + sum(sizes)) / budget))
        if parts <= 1:
            return [list(items)]
        even = math.ceil(len(items) / parts)
        out: list[list[X]] = []
        current: list[X] = []
        used = BODY_OVERHEAD
        for item, size in zip(items, sizes, strict=True):
            if current and (len(current) >= even or (budget and used + size > budget)):
                out.append(current)
                current, used = [], BODY_OVERHEAD
            current.append(item)
            used += size
        out.append(current)
        return out


@dataclass(frozen=True, slots=True)
class Paging:
    """What is known of a GET's pages: the largest `limit` it takes (after a 400 to a larger
    one), and the largest page it has answered."""

    max_limit: int | None = None
    floor: int = 0


class LearnedLimits:
    """The learned facts of one client id and API version, in Redis."""

    def __init__(self, redis: aioredis.Redis, client_id: str, version: str) -> None:
        self._redis = redis
        self._update = redis.register_script(_UPDATE)
        self.prefix = f"promobulk:criteo:learned:{client_id}:{version}:"

    async def write_limits(self, endpoint: str) -> WriteLimits:
        ids, over, ok = await self._get(f"ids:{endpoint}", f"over:{endpoint}", f"ok:{endpoint}")
        return WriteLimits(ids, _byte_target(over, ok))

    async def paging(self) -> Paging:
        max_limit, floor = await self._get("limit:get", "floor:get")
        return Paging(max_limit, floor or 0)

    async def per_item(self, endpoint: str) -> bool:
        (flag,) = await self._get(f"per_item:{endpoint}")
        return bool(flag)

    async def learn_ids_cap(self, endpoint: str, cap: int) -> None:
        await self._set(f"ids:{endpoint}", cap, "min", DAY_MS)

    async def learn_too_large(self, endpoint: str, body_bytes: int) -> None:
        await self._set(f"over:{endpoint}", body_bytes, "min", DAY_MS)

    async def learn_accepted(self, endpoint: str, body_bytes: int) -> None:
        """A body that passed while a byte limit is being learned (see `write_limits`)."""
        await self._set(f"ok:{endpoint}", body_bytes, "max", DAY_MS)

    async def learn_max_limit(self, limit: int) -> None:
        await self._set("limit:get", limit, "set", DAY_MS)

    async def learn_page_floor(self, size: int) -> None:
        await self._set("floor:get", size, "max", HOUR_MS)

    async def learn_per_item(self, endpoint: str) -> None:
        await self._set(f"per_item:{endpoint}", 1, "set", DAY_MS)

    async def _get(self, *fields: str) -> list[int | None]:
        try:
            raw = await self._redis.mget([self.prefix + f for f in fields])
        except RedisError as exc:
            raise error_for_redis("learned limits", exc) from exc
        return [None if v is None else int(v) for v in raw]

    async def _set(self, field: str, value: int, how: str, ttl_ms: int) -> None:
        try:
            await self._update(keys=[self.prefix + field], args=[value, how, ttl_ms])
        except RedisError as exc:
            raise error_for_redis("learned limits", exc) from exc


def _byte_target(too_large: int | None, accepted: int | None) -> int | None:
    """The body size to cut to: half the smallest refused one while nothing is known to pass;
    then the largest that passed, or, while that is more than 10% below the smallest refused,
    the middle of the two (a probe: refused, it lowers one bound; accepted, it raises the
    other). A body that passed though larger than one refused means the limit moved up."""
    if too_large is None:
        return None
    if accepted is None:
        return max(1, too_large // 2)
    if accepted < too_large and too_large - accepted > too_large // 10:
        return (accepted + too_large) // 2
    return accepted
