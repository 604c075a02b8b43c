"""`CriteoClient`: sends and classifies; what to send is the planner's business.

Every HTTP attempt goes limiter slot -> token -> send with a timeout -> feed the answer back to
the limiter -> classify. A 401 renews the token once and resends inside the same attempt;
transient failures are retried by the `RetryPolicy`; permanent ones are raised at once.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from worker import metrics
from worker.config import DEFAULT_PAGE_SIZE, Settings
from worker.criteo.auth import IssuedToken, TokenCache
from worker.criteo.errors import (
    AuthenticationFailed,
    RequestTooLarge,
    UnexpectedResponse,
    ValidationRejected,
    error_for_redis,
    error_for_response,
    error_for_transport,
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
from worker.criteo.transport import (
    AiohttpSession,
    AiohttpTransport,
    HttpResponse,
    Transport,
    TransportError,
    TransportTimeout,
)
from worker.criteo.usage import UsageRecorder
from worker.domain.enums import Priority

T = TypeVar("T")

log = logging.getLogger("promobulk.criteo")

_TRACE_HEADERS = ("x-trace-id", "x-request-id", "trace-id")
#: The page size a GET gets when it asks for none (documented).
DOCUMENTED_PAGE_SIZE = 500
_NOTHING_SENT = SentSkus(())
_deprecation_logged = False


def _log_deprecation_once(endpoint: str, headers: Mapping[str, str]) -> None:
    """The API announces a version's end this way; say it once per process, not per call."""
    global _deprecation_logged
    if _deprecation_logged or not ("deprecation" in headers or "sunset" in headers):
        return
    _deprecation_logged = True
    log.warning(
        "the Criteo API version in use is deprecated (seen on %s): Deprecation=%s Sunset=%s;"
        " set CRITEO_API_VERSION to a newer version",
        endpoint,
        headers.get("deprecation", "-"),
        headers.get("sunset", "-"),
    )


def _decode(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body, parse_float=Decimal)
    except ValueError:
        return None


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
        self._client_id = client_id
        self._client_secret = client_secret
        self._transport = transport
        self._limiter = limiter
        self._retry = retry
        self._timeout = request_timeout
        self._page_size = page_size
        self._token = TokenCache(
            redis,
            client_id,
            self._fetch_token,
            renew_before=token_renew_before,
            lock_timeout=retry.max_total_seconds + request_timeout,
        )
        self._learned = LearnedLimits(redis, client_id, version)
        self._byte_limited: set[str] = set()
        self.calls: Counter[str] = Counter()
        self._usage = UsageRecorder(redis, client_id)

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
        response = await self._call(
            "get", "GET", self._products_url(line_item_id), priority, params=params
        )
        page = _decode(response.body)
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
            response = await self._call(action, "POST", url, priority, body=body, sent=sent)
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
        decoded = _decode(response.body)
        # A 200 that also lists errors applied the rest: those problems are per-SKU news too.
        warnings = parse_problems(decoded, "warnings", sent) + parse_problems(
            decoded, "errors", sent
        )
        return WriteResult(
            status=response.status,
            warnings=warnings,
            trace_id=_trace_id(response.headers, warnings),
            has_body=bool(response.body.strip()),
        )

    async def _shared(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Reading or teaching the learned limits: Redis failing is transient, retried as a
        call is."""
        return await self._retry.run(operation)

    async def _call(
        self,
        endpoint: str,
        method: str,
        url: str,
        priority: Priority,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        sent: SentSkus = _NOTHING_SENT,
    ) -> HttpResponse:
        """One logical call: retried when transient, token renewed once on a 401."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"

        async def attempt() -> HttpResponse:
            try:
                return await self._attempt(
                    endpoint, method, url, priority, headers, params, body, sent
                )
            except RedisError as exc:
                raise error_for_redis(endpoint, exc) from exc

        return await self._retry.run(attempt)

    async def _attempt(
        self,
        endpoint: str,
        method: str,
        url: str,
        priority: Priority,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: bytes | None,
        sent: SentSkus,
    ) -> HttpResponse:
        """One try: a 401 drops the token that failed and the request goes once more."""
        token = await self._token.get()
        response = await self._send(endpoint, method, url, priority, headers, token, params, body)
        if response.status == 401:
            await self._token.discard(token)
            token = await self._token.get()
            response = await self._send(
                endpoint, method, url, priority, headers, token, params, body
            )
            if response.status == 401:
                await self._token.discard(token)
        problems = parse_problems(_decode(response.body), "errors", sent)
        error = error_for_response(
            endpoint,
            response.status,
            problems,
            _trace_id(response.headers, problems),
            body_bytes=None if body is None else len(body),
        )
        if error is not None:
            raise error
        return response

    async def _send(
        self,
        endpoint: str,
        method: str,
        url: str,
        priority: Priority,
        headers: Mapping[str, str],
        token: str | None,
        params: Mapping[str, str] | None,
        body: bytes | None,
    ) -> HttpResponse:
        """Exactly one HTTP request, inside a limiter slot."""
        slot = await self._limiter.acquire(priority)
        self.calls[endpoint] += 1
        if token is not None:
            headers = {**headers, "Authorization": f"Bearer {token}"}
        try:
            response = await self._transport.send(
                method,
                url,
                headers=headers,
                params=params,
                body=body,
                request_timeout=self._timeout,
            )
        except TransportError as exc:
            metrics.api_call(endpoint, "timeout" if isinstance(exc, TransportTimeout) else "error")
            if endpoint != "token":  # token calls do not count against the rate limit
                await self._usage.record("error")
            raise error_for_transport(endpoint, exc) from exc
        metrics.api_call(endpoint, response.status)
        if endpoint != "token":
            await self._usage.record(response.status)
        await self._limiter.observe(slot, response.status, response.headers)
        _log_deprecation_once(endpoint, response.headers)
        return response

    async def _fetch_token(self) -> IssuedToken:
        form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            }
        ).encode()
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }

        async def attempt() -> IssuedToken:
            response = await self._send(
                "token",
                "POST",
                f"{self._base}/oauth2/token",
                # Not HIGH: that would hold back a share of the rate for a minute every renewal.
                Priority.NORMAL,
                headers,
                None,
                None,
                form,
            )
            decoded = _decode(response.body)
            problems = parse_problems(decoded, "errors", _NOTHING_SENT)
            if response.status in (400, 401, 403):
                codes = ", ".join(p.code for p in problems if p.code)
                raise AuthenticationFailed(
                    f"token endpoint refused the client credentials: HTTP {response.status}"
                    + (f" ({codes})" if codes else ""),
                    status=response.status,
                    problems=problems,
                )
            error = error_for_response(
                "token", response.status, problems, _trace_id(response.headers, problems)
            )
            if error is not None:
                raise error
            token = decoded.get("access_token") if isinstance(decoded, dict) else None
            expires_in = decoded.get("expires_in") if isinstance(decoded, dict) else None
            if not isinstance(token, str) or not isinstance(expires_in, int | Decimal):
                raise UnexpectedResponse("token: answer without access_token/expires_in")
            return IssuedToken(token, float(expires_in))

        return await self._retry.run(attempt)


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


def _trace_id(headers: Mapping[str, str], problems: Sequence[Problem]) -> str | None:
    for problem in problems:
        if problem.trace_id:
            return str(problem.trace_id)
    for name in _TRACE_HEADERS:
        if headers.get(name):
            return headers[name]
    return None
