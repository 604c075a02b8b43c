"""One API request in flight, shared by the token and products routes: where it is logged,
the headers its answer carries, and how it fails (a 5xx, a hang, a reset connection)."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from worker.simulator.faults import Fault
from worker.simulator.problems import Problem, envelope, problem
from worker.simulator.requestlog import Entry, RequestLog
from worker.simulator.simulator import Simulator

_FAULT_STATUS = {
    Fault.ERROR_500: (500, "unknown", "internal-error", "Internal server error"),
    Fault.ERROR_502: (502, "availability", "bad-gateway", "Bad gateway"),
    Fault.ERROR_503: (503, "availability", "service-unavailable", "Service unavailable"),
}
#: Faults that end a request without its normal answer.
FAILURES = frozenset({*_FAULT_STATUS, Fault.HANG, Fault.RESET})


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


@dataclass(slots=True)
class Call:
    """One API request in flight: where it is logged and what goes on its response."""

    sim: Simulator
    log: RequestLog
    entry: Entry
    request: web.Request
    headers: dict[str, str]
    latency: float = 0.0

    def problem(self, status: int, type_: str, code: str, title: str, detail: str) -> Problem:
        return problem(
            status=status,
            type_=type_,
            code=code,
            title=title,
            detail=detail,
            trace_id=uuid.uuid4().hex,
            instance=self.request.path,
        )

    def error(self, status: int, type_: str, code: str, title: str, detail: str) -> web.Response:
        return json_response(
            envelope([self.problem(status, type_, code, title, detail)]), status, self.headers
        )

    async def answer(self, response: web.Response, fault: Fault | None = None) -> web.Response:
        if self.latency:
            await asyncio.sleep(self.latency)
        self.log.finish(self.entry, response.status, fault.value if fault else None)
        return response

    async def fail(self, fault: Fault) -> web.Response:
        """A 5xx, or a hang or a connection reset (after which no response is sent)."""
        if fault in _FAULT_STATUS:
            status, type_, code, title = _FAULT_STATUS[fault]
            return await self.answer(self.error(status, type_, code, title, title), fault)
        self.log.finish(self.entry, fault.value, fault.value)
        if fault is Fault.HANG:
            await asyncio.sleep(self.sim.config.hang_seconds)
        _reset_connection(self.request)
        return web.Response(status=500)  # never reaches the client: the transport is gone


def _reset_connection(request: web.Request) -> None:
    """Close with an RST (SO_LINGER 0), as a dropped connection looks to a client."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
