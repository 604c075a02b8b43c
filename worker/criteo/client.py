"""`CriteoClient`: the promoted-products endpoints; what to send is the planner's business.

Reading pages through a line item at the fewest calls, and writing, while learning the limits
a server shows (see `LearnedLimits`). How one call is sent, retried and classified:
`worker.criteo.sender`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as aioredis

from worker.config import DEFAULT_PAGE_SIZE, Settings
from worker.criteo.errors import (
    RequestTooLarge,
    UnexpectedResponse,
    ValidationRejected,
    one_problem_per_item,
)
from worker.criteo.learned import LearnedLimits, WriteLimits
from worker.criteo.limiter import RateLimiter
from worker.criteo.models import (
    Problem,
    ProductState,
    ProductWrite,
    WriteResult,
    encode_body,
    parse_problems,
    parse_product,
    write_entry,
)
from worker.criteo.naming import SentSkus, integers
from worker.criteo.retry import RetryPolicy
from worker.criteo.sender import Sender, decode, trace_id
from worker.criteo.transport import AiohttpSession, AiohttpTransport, Transport
from worker.domain.enums import Priority

T = TypeVar("T")
#: The page size a GET gets when it asks for none (documented).
DOCUMENTED_PAGE_SIZE = 500


class CriteoClient:
    """The promoted-products endpoints of one application (client id), shared budget and token."""

    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        client_id: str,
        client_secret: str,
        transport: Transport,
        redis: aioredis.Redis,
        limiter: RateLimiter,
        retry: RetryPolicy,
        request_timeout: float,
        token_renew_before: float = 60.0,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._version = version
        self._retry = retry
        self._page_size = page_size
        self._sender = Sender(
            base_url=self._base,
            client_id=client_id,
            client_secret=client_secret,
            transport=transport,
            redis=redis,
            limiter=limiter,
            retry=retry,
            request_timeout=request_timeout,
            token_renew_before=token_renew_before,
        )
        self._learned = LearnedLimits(redis, client_id, version)
        self._byte_limited: set[str] = set()

    @property
    def calls(self) -> Counter[str]:
        """HTTP requests sent, by endpoint (`token`, `get`, an action)."""
        return self._sender.calls

    def __repr__(self) -> str:
        return f"CriteoClient(base_url={self._base!r}, version={self._version!r})"

    @classmethod
    def from_settings(
        cls, settings: Settings, session: AiohttpSession, redis: aioredis.Redis
    ) -> CriteoClient:
        client_id = settings.criteo_client_id
        return cls(
            base_url=settings.criteo_api_url,
            version=settings.criteo_api_version,
            client_id=client_id,
            client_secret=settings.criteo_client_secret.get_secret_value(),
            transport=AiohttpTransport(session),
            redis=redis,
            limiter=RateLimiter(
                redis,
                client_id,
                rate_per_minute=settings.criteo_rate_limit_per_minute,
                safety_margin=settings.criteo_rate_limit_safety_margin,
                high_share=settings.criteo_rate_limit_high_priority_share,
                max_wait=settings.criteo_rate_limit_max_wait_seconds,
            ),
            retry=RetryPolicy(
                max_attempts=settings.criteo_retry_max_attempts,
                max_total_seconds=settings.criteo_retry_max_seconds,
                base_delay=settings.criteo_retry_base_delay,
                max_delay=settings.criteo_retry_max_delay,
            ),
            request_timeout=settings.criteo_request_timeout,
            token_renew_before=settings.criteo_token_renew_before_seconds,
            page_size=settings.criteo_page_size,
        )

    def _products_url(self, line_item_id: int, action: str | None = None) -> str:
        url = f"{self._base}/{self._version}/retail-media/line-items/{line_item_id}/products"
        return f"{url}/{action}" if action else url

    async def get_products(
        self,
        line_item_id: int,
        *,
        priority: Priority = Priority.NORMAL,
        until: Collection[str] | None = None,
    ) -> list[ProductState]:
        """Every product of the line item with status and bid override; with `until`, only the
        pages up to the one where the last of those SKUs shows (a read-back needs no more).

        Any server is paged to its end at the fewest calls: one that honours the large `limit`
        asked for (one call for a line item of 1,500 products); one that answers fewer items
        than asked (paging goes on from where the page ended); one that refuses a `limit` it
        finds too large (a smaller one is tried and remembered); one that gives no
        `meta.count` (a short page ends the list only when it is shorter than a page this
        server has answered before, or than the page size its `meta.limit` says it applied;
        else the next page is asked for, since a product missed would fail its SKUs wrongly).
        """
        paging = await self._shared(self._learned.paging)
        limit = min(self._page_size, paging.max_limit or self._page_size)
        floor = paging.floor
        wanted = None if until is None else set(until)
        products: list[ProductState] = []
        offset = 0
        fell_back = False
        while True:
            try:
                data, count, told = await self._page(line_item_id, offset, limit, priority)
            except ValidationRejected as refused:
                smaller = _smaller_limit(limit, refused.problems)
                if smaller is None:
                    raise
                limit, fell_back = smaller, True
                continue
            if fell_back:
                await self._shared(partial(self._learned.learn_max_limit, limit))
                fell_back = False
            n = len(data)
            products.extend(data)
            offset += n
            if n > floor:
                await self._shared(partial(self._learned.learn_page_floor, n))
            if wanted is not None:
                wanted.difference_update(p.sku_id for p in data)
                if not wanted:
                    return products
            if n == 0 or (count is not None and offset >= count):
                return products
            # A `meta.limit` below the one asked is the server saying where it cut the page;
            # one equal to it may only be an echo.
            cut = told if told is not None and told < limit else None
            short = n < (cut or limit)
            if count is None and short and (n < floor or cut is not None):
                return products
            floor = max(floor, n)

    async def _page(
        self, line_item_id: int, offset: int, limit: int, priority: Priority
    ) -> tuple[list[ProductState], int | None, int | None]:
        """One GET: its products, and its `meta.count` and `meta.limit` when it has them."""
        params = {"offset": str(offset), "limit": str(limit), "fields": "status,bidOverride"}
        response = await self._sender.call(
            "get", "GET", self._products_url(line_item_id), priority, params=params
        )
        page = decode(response.body)
        data = page.get("data") if isinstance(page, dict) else None
        if not isinstance(data, list):
            raise UnexpectedResponse(
                f"get: HTTP {response.status} without a data list", status=response.status
            )
        meta = page.get("meta") if isinstance(page, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        count, told = meta.get("count"), meta.get("limit")
        return (
            [parse_product(item) for item in data if isinstance(item, dict)],
            count if isinstance(count, int) and not isinstance(count, bool) else None,
            told if isinstance(told, int) and not isinstance(told, bool) and told > 0 else None,
        )

    async def write_limits(self, action: str) -> WriteLimits:
        """How far one request of `action` may go, as learned so far (see `LearnedLimits`)."""
        limits = await self._shared(partial(self._learned.write_limits, action))
        if limits.max_bytes is None:
            self._byte_limited.discard(action)
        else:
            self._byte_limited.add(action)
        return limits

    async def append_products(
        self,
        line_item_id: int,
        items: Sequence[ProductWrite],
        *,
        priority: Priority = Priority.NORMAL,
    ) -> WriteResult:
        """Add products, or set the bid override of ones already there (absolute values).

        A bid that a JSON number cannot carry exactly raises ValueError before anything is sent.
        """
        data = [write_entry(item.sku_id, item.bid_override) for item in items]
        return await self._write("append", line_item_id, data, priority)

    async def delete_products(
        self, line_item_id: int, sku_ids: Sequence[str], *, priority: Priority = Priority.NORMAL
    ) -> WriteResult:
        return await self._write("delete", line_item_id, _ids(sku_ids), priority)

    async def pause_products(
        self, line_item_id: int, sku_ids: Sequence[str], *, priority: Priority = Priority.NORMAL
    ) -> WriteResult:
        return await self._write("pause", line_item_id, _ids(sku_ids), priority)

    async def unpause_products(
        self, line_item_id: int, sku_ids: Sequence[str], *, priority: Priority = Priority.NORMAL
    ) -> WriteResult:
        return await self._write("unpause", line_item_id, _ids(sku_ids), priority)

    async def _write(
        self, action: str, line_item_id: int, data: list[dict[str, Any]], priority: Priority
    ) -> WriteResult:
        """One write. A refusal for size teaches the limit to every process before it is
        raised (`RequestTooLarge.limits`); a 400 tells whether refusals come one per item."""
        if not data:
            raise ValueError(f"{action}: nothing to send")
        url = self._products_url(line_item_id, action)
        sent = SentSkus([entry["id"] for entry in data], urlsplit(url).path)
        body = encode_body(data)
        try:
            response = await self._sender.call(action, "POST", url, priority, body=body, sent=sent)
        except RequestTooLarge as too_large:
            if too_large.ids_cap is not None:
                cap = too_large.ids_cap or len(sent) // 2
                await self._shared(partial(self._learned.learn_ids_cap, action, max(1, cap)))
            else:
                await self._shared(partial(self._learned.learn_too_large, action, len(body)))
            too_large.limits = await self.write_limits(action)
            raise
        except ValidationRejected as rejected:
            if one_problem_per_item(rejected.problems):
                await self._shared(partial(self._learned.learn_per_item, action))
            rejected.per_item = await self._shared(partial(self._learned.per_item, action))
            raise
        if action in self._byte_limited:
            await self._shared(partial(self._learned.learn_accepted, action, len(body)))
        decoded = decode(response.body)
        # A 200 that also lists errors applied the rest: those problems are per-SKU news too.
        warnings = parse_problems(decoded, "warnings", sent) + parse_problems(
            decoded, "errors", sent
        )
        return WriteResult(
            status=response.status,
            warnings=warnings,
            trace_id=trace_id(response.headers, warnings),
            has_body=bool(response.body.strip()),
        )

    async def _shared(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Reading or teaching the learned limits: Redis failing is transient, retried as a
        call is."""
        return await self._retry.run(operation)


def _ids(sku_ids: Sequence[str]) -> list[dict[str, Any]]:
    return [write_entry(sku) for sku in sku_ids]


def _smaller_limit(limit: int, problems: Sequence[Problem]) -> int | None:
    """A `limit` to try after a GET was refused: the largest number below it that the problem
    names (a maximum, as in "limit must be at most 1000"), else the documented default page
    size; None when even that was refused (the 400 is then about something else)."""
    named = [n for p in problems for n in integers(f"{p.title} {p.detail}") if 0 < n < limit]
    if named:
        return max(named)
    return DOCUMENTED_PAGE_SIZE if limit > DOCUMENTED_PAGE_SIZE else None
