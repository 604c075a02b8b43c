"""`Sender`: one logical call to the API, the part every endpoint shares.

Every HTTP attempt goes limiter slot -> token -> send with a timeout -> feed the answer back to
the limiter -> classify. A 401 renews the token once and resends inside the same attempt;
transient failures are retried by the `RetryPolicy`; permanent ones are raised at once. The
token itself is fetched through the same path (without a token, not counted as usage).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from worker import metrics
from worker.criteo.auth import IssuedToken, TokenCache
from worker.criteo.errors import (
    AuthenticationFailed,
    UnexpectedResponse,
    error_for_redis,
    error_for_response,
    error_for_transport,
)
from worker.criteo.limiter import RateLimiter
from worker.criteo.models import Problem, parse_problems
from worker.criteo.naming import SentSkus
from worker.criteo.retry import RetryPolicy
from worker.criteo.transport import HttpResponse, Transport, TransportError, TransportTimeout
from worker.criteo.usage import UsageRecorder
from worker.domain.enums import Priority

log = logging.getLogger("promobulk.criteo")

_TRACE_HEADERS = ("x-trace-id", "x-request-id", "trace-id")
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


def decode(body: bytes) -> Any:
    """A JSON body with exact decimals (bids); None when empty or not JSON (the status decides)."""
    if not body.strip():
        return None
    try:
        return json.loads(body, parse_float=Decimal)
    except ValueError:
        return None


def trace_id(headers: Mapping[str, str], problems: Sequence[Problem]) -> str | None:
    """The id Criteo's support asks for: a problem's, else the response headers'."""
    for problem in problems:
        if problem.trace_id:
            return str(problem.trace_id)
    for name in _TRACE_HEADERS:
        if headers.get(name):
            return headers[name]
    return None


class Sender:
    """Sends for one application (client id): its token, rate-limit slots and usage."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        transport: Transport,
        redis: aioredis.Redis,
        limiter: RateLimiter,
        retry: RetryPolicy,
        request_timeout: float,
        token_renew_before: float,
    ) -> None:
        self._base = base_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._transport = transport
        self._limiter = limiter
        self._retry = retry
        self._timeout = request_timeout
        self._token = TokenCache(
            redis,
            client_id,
            self._fetch_token,
            renew_before=token_renew_before,
            lock_timeout=retry.max_total_seconds + request_timeout,
        )
        self.calls: Counter[str] = Counter()
        self._usage = UsageRecorder(redis, client_id)

    async def call(
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
        problems = parse_problems(decode(response.body), "errors", sent)
        error = error_for_response(
            endpoint,
            response.status,
            problems,
            trace_id(response.headers, problems),
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
            decoded = decode(response.body)
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
                "token", response.status, problems, trace_id(response.headers, problems)
            )
            if error is not None:
                raise error
            token = decoded.get("access_token") if isinstance(decoded, dict) else None
            expires_in = decoded.get("expires_in") if isinstance(decoded, dict) else None
            if not isinstance(token, str) or not isinstance(expires_in, int | Decimal):
                raise UnexpectedResponse("token: answer without access_token/expires_in")
            return IssuedToken(token, float(expires_in))

        return await self._retry.run(attempt)
