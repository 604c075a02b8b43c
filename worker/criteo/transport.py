"""HTTP on aiohttp behind a small seam: the only module of the client that imports aiohttp.

The client sees a `Transport`: one request in, one fully read response (or a `TransportError`)
out. Keeping aiohttp here lets everything above it be exercised with any other transport.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypeAlias

import aiohttp

AiohttpSession: TypeAlias = aiohttp.ClientSession


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    """Lower-cased names."""
    body: bytes


class TransportError(Exception):
    """No HTTP answer: the request may or may not have reached the server."""


class TransportTimeout(TransportError):
    pass


class TransportConnectionError(TransportError):
    pass


class Transport(Protocol):
    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        request_timeout: float,
    ) -> HttpResponse: ...


def open_session() -> aiohttp.ClientSession:
    """The one session a process keeps; call it inside the event loop that will use it."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=32, ttl_dns_cache=300), raise_for_status=False
    )


class AiohttpTransport:
    """Sends on a session the caller owns (one per worker process)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        request_timeout: float,
    ) -> HttpResponse:
        try:
            async with self._session.request(
                method,
                url,
                headers=dict(headers),
                params=dict(params) if params else None,
                data=body,
                timeout=aiohttp.ClientTimeout(total=request_timeout),
                allow_redirects=False,
            ) as response:
                payload = await response.read()
                return HttpResponse(
                    status=response.status,
                    headers={k.lower(): v for k, v in response.headers.items()},
                    body=payload,
                )
        except TimeoutError as exc:
            raise TransportTimeout(f"timed out after {request_timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            raise TransportConnectionError(type(exc).__name__) from exc
