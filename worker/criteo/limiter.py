"""The global rate limiter: one budget per client id in Redis, shared by every process and host.

Calls are spaced evenly (GCRA with no burst, by reservation: each caller is given a slot and
sleeps until it), so a server counting over any sliding 60-second window never sees more than
the configured rate minus the safety margin. All state lives in one Redis hash updated by one
Lua script, so every decision is atomic across processes:

- *Reserved share.* While high-priority traffic has been seen in the last `high_window` seconds,
  normal calls get `1 - high_share` of the rate and high calls get their own `high_share`
  bucket (and may also take a free normal slot). With no high traffic, normal calls get it all.
- *Adaptive factor.* A 429 multiplies the rate by `decrease`, at most once a minute: the
  server counts over 60 s, so a cut shows only after a window, and the 429s until then say
  nothing new. The rate then recovers slowly (`recover_per_minute`), and the low-remaining
  brake below keeps it from climbing back over a real limit, so a limit below the configured
  one is found and held.
- *Blocked until.* A 429 anywhere pushes a shared "blocked until" forward (to the reset the
  server announces, at least `block_base`, doubling per consecutive 429 of a call sent after
  the last block ended, capped), so every process backs off, not only the one that saw it.
  Calls booked before a block say nothing new and do not lengthen it.
- *Headers.* A lower `x-ratelimit-limit` is adopted as the ceiling; when `x-ratelimit-remaining`
  falls to `low_water` of the limit the rate is halved until `x-ratelimit-reset`, and at 0
  every process waits for the reset. (Spreading the remaining calls until the reset would be
  far too slow against a sliding window, where calls free up continuously.)

Times are passed in from the caller's clock (wall time, in ms), which keeps the script
deterministic under test; hosts sharing a budget need NTP-synchronised clocks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis

from worker import metrics
from worker.criteo.errors import RateLimited
from worker.domain.enums import Priority

_SCRIPT = """
local key = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local margin = tonumber(ARGV[4])
local share = tonumber(ARGV[5])
local min_factor = tonumber(ARGV[6])
local decrease = tonumber(ARGV[7])
local v = redis.call('HMGET', key, 'tn', 'th', 'hu', 'f', 'lt', 'ld', 'bu', 'st', 'sl', 'slu',
                     'hiu')
local tn = tonumber(v[1]) or 0
local th = tonumber(v[2]) or 0
local hu = tonumber(v[3]) or 0
local f = tonumber(v[4]) or 1
local lt = tonumber(v[5]) or now
local ld = tonumber(v[6]) or 0
local bu = tonumber(v[7]) or 0
local st = tonumber(v[8]) or 0
local sl = tonumber(v[9]) or 0
local slu = tonumber(v[10]) or 0
local hiu = tonumber(v[11]) or 0
local result

if op == 'acquire' then
  local high = ARGV[8] == 'high'
  local high_window = tonumber(ARGV[9])
  local max_wait = tonumber(ARGV[10])
  local recover = tonumber(ARGV[11])
  f = math.min(1, f + recover * math.max(0, now - lt) / 60000)
  lt = now
  local limit = rate
  if sl > 0 and now < slu and sl < limit then limit = sl end
  local interval = 60000 / (limit * (1 - margin) * f)
  if now < hiu then interval = interval * 2 end
  local start = math.max(now, bu)
  if high then hu = now + high_window end
  local split = share > 0 and now < hu
  local normal_interval = interval
  if split then normal_interval = interval / (1 - share) end
  local slot = math.max(start, tn)
  local bucket = 'n'
  if high and split and math.max(start, th) < slot then
    slot = math.max(start, th)
    bucket = 'h'
  end
  if slot - now > max_wait then
    result = {0, string.format('%.3f', slot)}
  else
    if bucket == 'n' then tn = slot + normal_interval else th = slot + interval / share end
    result = {1, string.format('%.3f', slot)}
  end
else
  local slot = tonumber(ARGV[8])
  local status = tonumber(ARGV[9])
  local hdr_limit = tonumber(ARGV[10])
  local remaining = tonumber(ARGV[11])
  local reset = tonumber(ARGV[12])
  local block_base = tonumber(ARGV[13])
  local block_cap = tonumber(ARGV[14])
  local low_water = tonumber(ARGV[15])
  if status == 429 then
    if slot >= bu then st = st + 1 end
    if now >= ld + 60000 then
      f = math.max(min_factor, f * decrease)
      ld = now
    end
    local until_ = now + math.min(block_cap, block_base * 2 ^ math.max(0, st - 1))
    if reset and reset > until_ then until_ = math.min(reset, now + block_cap) end
    bu = math.max(bu, until_)
  else
    st = 0
    if hdr_limit and hdr_limit > 0 then
      sl = hdr_limit
      slu = now + 600000
    end
    if remaining and reset and reset > now then
      local base = rate
      if sl > 0 and sl < base then base = sl end
      if remaining <= math.max(1, math.ceil(low_water * base)) then
        hiu = math.max(hiu, math.min(reset, now + block_cap))
        if remaining <= 0 then bu = math.max(bu, math.min(reset, now + block_cap)) end
      end
    end
  end
  result = {1, string.format('%.6f', f)}
end

redis.call('HSET', key, 'tn', tn, 'th', th, 'hu', hu, 'f', f, 'lt', lt, 'ld', ld, 'bu', bu,
           'st', st, 'sl', sl, 'slu', slu, 'hiu', hiu)
redis.call('PEXPIRE', key, 3600000)
return result
"""


@dataclass(frozen=True, slots=True)
class LimiterState:
    """A snapshot of the shared state, for tests and metrics (times in epoch seconds)."""

    factor: float
    blocked_until: float
    server_limit: int | None
    next_normal_slot: float


class RateLimiter:
    """Hands out evenly spaced call slots from the shared budget of one client id."""

    def __init__(
        self,
        redis: aioredis.Redis,
        client_id: str,
        *,
        rate_per_minute: float,
        safety_margin: float = 0.02,
        high_share: float = 0.1,
        high_window: float = 60.0,
        max_wait: float = 30.0,
        decrease: float = 0.8,
        min_factor: float = 0.25,
        recover_per_minute: float = 0.01,
        block_base: float = 2.0,
        block_cap: float = 30.0,
        low_water: float = 0.01,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 <= high_share < 1:
            raise ValueError("high_share must be in [0, 1)")
        self._redis = redis
        self._script = redis.register_script(_SCRIPT)
        self.key = f"promobulk:criteo:ratelimit:{client_id}"
        self._common = (rate_per_minute, safety_margin, high_share, min_factor, decrease)
        self._acquire_args = (high_window * 1000, max_wait * 1000, recover_per_minute)
        self._observe_args = (block_base * 1000, block_cap * 1000, low_water)
        self._clock = clock
        self._sleep = sleep

    async def reserve(self, priority: Priority = Priority.NORMAL) -> float:
        """Book the next slot (epoch seconds) without waiting for it.

        Raises `RateLimited` (booking nothing) when the slot is more than `max_wait` away, so
        the caller parks instead of sleeping through a long block.
        """
        now_ms = self._clock() * 1000
        granted, slot = await self._script(
            keys=[self.key],
            args=[
                "acquire",
                now_ms,
                *self._common,
                priority.value,
                *self._acquire_args,
            ],
        )
        slot_s = float(slot) / 1000
        if not int(granted):
            wait = slot_s - now_ms / 1000
            raise RateLimited(
                f"rate limiter: next slot in {wait:.1f}s, longer than the wait allowed",
                retry_after=wait,
            )
        return slot_s

    async def acquire(self, priority: Priority = Priority.NORMAL) -> float:
        """Book a slot and sleep until it; returns the slot for `observe`."""
        slot = await self.reserve(priority)
        wait = slot - self._clock()
        metrics.LIMITER_WAIT.observe(max(wait, 0.0))
        if wait > 0:
            await self._sleep(wait)
        return slot

    async def observe(self, slot: float, status: int, headers: Mapping[str, str]) -> None:
        """Feed back what the API said about a call sent in `slot`."""
        now = self._clock()
        await self._script(
            keys=[self.key],
            args=[
                "observe",
                now * 1000,
                *self._common,
                slot * 1000,
                status,
                _header_number(headers, "x-ratelimit-limit") or "",
                _header_number(headers, "x-ratelimit-remaining") or "",
                _reset_ms(headers.get("x-ratelimit-reset"), now) or "",
                *self._observe_args,
            ],
        )

    async def state(self) -> LimiterState:
        raw = await self._redis.hmget(self.key, ["f", "bu", "sl", "slu", "tn"])
        f, bu, sl, slu, tn = (float(x) if x is not None else None for x in raw)
        live_limit = sl if sl and slu and slu > self._clock() * 1000 else None
        return LimiterState(
            factor=1.0 if f is None else f,
            blocked_until=(bu or 0.0) / 1000,
            server_limit=int(live_limit) if live_limit else None,
            next_normal_slot=(tn or 0.0) / 1000,
        )


def _header_number(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return str(float(value.strip()))
    except ValueError:
        return None


def _reset_ms(value: str | None, now: float) -> str | None:
    """`x-ratelimit-reset` as epoch ms; epoch seconds or ms, or seconds from now if small."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if number > 1e11:
        seconds = number / 1000
    elif number > 1e8:
        seconds = number
    else:
        seconds = now + number
    return str(seconds * 1000)
