"""The simulator's HTTP server: Criteo's token and promoted-products endpoints plus `/_sim/`.

Each product request goes through, in order: version (410 dead, 404 unknown), token (401),
rate limit (429), injected faults, body size (413), scope (403), line item (404), consent
(403), the body's shape and ids cap (400), the rules (400 or 200 with warnings, by validation
mode). Config keys: see `worker.simulator.config`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from itertools import islice
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from worker.simulator.config import SimConfig
from worker.simulator.faults import Fault, FaultSource
from worker.simulator.problems import Problem, envelope, problem
from worker.simulator.ratelimit import Quota, RateLimiter
from worker.simulator.requestlog import Entry, RequestLog
from worker.simulator.scenario import Scenario, generate
from worker.simulator.shapes import anonymous, named
from worker.simulator.state import Action, ItemProblem, SimState, apply_write
from worker.simulator.tokens import TokenCheck, TokenStore

ACTIONS: tuple[Action, ...] = ("append", "delete", "pause", "unpause")
FIELDS = frozenset({"id", "status", "bidOverride"})
_DEPRECATION_WINDOW = timedelta(days=92)
_FAULT_STATUS = {
    Fault.ERROR_500: (500, "unknown", "internal-error", "Internal server error"),
    Fault.ERROR_502: (502, "availability", "bad-gateway", "Bad gateway"),
    Fault.ERROR_503: (503, "availability", "service-unavailable", "Service unavailable"),
}
#: Faults that end a request without its normal answer.
_FAILURES = frozenset({*_FAULT_STATUS, Fault.HANG, Fault.RESET})


class Simulator:
    """Everything mutable: loaded scenario, live state, config, log, tokens, limiter, faults."""

    def __init__(self, scenario: Scenario, seed: int, config: SimConfig) -> None:
        self.scenario = scenario
        self.seed = seed
        self.initial_config = config
        self.config = config
        self.tokens = TokenStore()
        self.state = SimState(scenario)
        self.log = RequestLog()
        self.limiter = RateLimiter()
        self.faults = FaultSource(seed)

    def reset(self, *, with_config: bool = False) -> None:
        """Back to the loaded scenario: state rebuilt, log and rate-limit windows cleared, fault
        source reseeded. Issued tokens stay valid (a running client need not notice)."""
        self.state = SimState(self.scenario)
        self.log = RequestLog()
        self.limiter = RateLimiter()
        self.faults = FaultSource(self.seed)
        if with_config:
            self.config = self.initial_config


SIM = web.AppKey("simulator", Simulator)


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


@dataclass(slots=True)
class _Call:
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
        return _json(
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


def _version_headers(config: SimConfig, version: str) -> dict[str, str]:
    """`Deprecation`/`Sunset` during a version's last three months."""
    sunset = config.sunsets.get(version)
    if sunset is None or not sunset - _DEPRECATION_WINDOW <= date.today() < sunset:
        return {}
    moment = datetime(sunset.year, sunset.month, sunset.day, tzinfo=UTC)
    return {"Deprecation": "true", "Sunset": format_datetime(moment, usegmt=True)}


async def token_endpoint(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    log = sim.log
    entry = log.start("token", request.method, request.path)
    form = await request.post()
    client_id = str(form.get("client_id", ""))
    config = sim.config
    call = _Call(
        sim,
        log,
        entry,
        request,
        sim.limiter.peek(client_id, config.rate_limit_per_minute).headers(),
    )
    call.latency, fault = sim.faults.draw(config.faults["token"])
    if fault in _FAILURES:
        return await call.fail(fault)
    if form.get("grant_type") != "client_credentials":
        return await call.answer(
            call.error(
                400,
                "validation",
                "unsupported-grant-type",
                "Unsupported grant type",
                "Only grant_type=client_credentials is supported",
            )
        )
    client = sim.state.clients.get(client_id)
    if client is None or client.client_secret != form.get("client_secret"):
        return await call.answer(
            call.error(
                401,
                "authentication",
                "invalid-client-credentials",
                "Invalid client credentials",
                "The client_id or client_secret is wrong",
            )
        )
    entry.client_id = client_id
    token = sim.tokens.issue(client_id, config.token_ttl_seconds)
    body = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": config.token_ttl_seconds,
        "refresh_token": None,
    }
    return await call.answer(_json(body, headers=call.headers))


async def products_endpoint(request: web.Request) -> web.StreamResponse:  # noqa: C901
    sim = request.app[SIM]
    action = request.match_info.get("action")
    if action is not None and action not in ACTIONS:
        raise web.HTTPNotFound()
    endpoint = action or "get"
    log, config = sim.log, sim.config
    entry = log.start(endpoint, request.method, request.path)
    line_item_id = _int(request.match_info["line_item_id"])
    data: list[Any] | None = None
    body_bytes = 0
    if action is not None:
        raw = await request.read()
        body_bytes = len(raw)
        data = _data(raw)
        if data is not None and line_item_id is not None:
            log.count_writes(
                entry,
                line_item_id,
                [
                    item["id"]
                    for item in data
                    if isinstance(item, dict) and isinstance(item.get("id"), str)
                ],
            )
    version = request.match_info["version"]
    call = _Call(sim, log, entry, request, {})
    if version not in config.live_versions:
        call.headers = sim.limiter.peek(None, config.rate_limit_per_minute).headers()
        if version in config.dead_versions:
            return await call.answer(
                call.error(
                    410,
                    "deprecation",
                    "version-gone",
                    "API version gone",
                    f"Version {version} has reached its sunset",
                )
            )
        return await call.answer(
            call.error(
                404,
                "validation",
                "version-not-found",
                "Unknown API version",
                f"Version {version} does not exist",
            )
        )

    who = sim.tokens.check(request.headers.get("Authorization"))
    client = sim.state.clients.get(who) if isinstance(who, str) else None
    if client is None:
        call.headers = sim.limiter.peek(None, config.rate_limit_per_minute).headers()
        check = who if isinstance(who, TokenCheck) else TokenCheck.INVALID
        return await call.answer(
            call.error(
                401, "authentication", check.value, "Authorization failed", _TOKEN_DETAIL[check]
            )
        )
    entry.client_id = client.client_id
    quota: Quota = sim.limiter.take(client.client_id, config.rate_limit_per_minute)
    call.headers = quota.headers()
    call.headers.update(_version_headers(config, version))
    if not quota.allowed:
        return await call.answer(
            call.error(
                429,
                "quota",
                "too-many-requests",
                "Too many requests",
                f"Rate limit of {quota.limit} calls per minute exceeded",
            )
        )

    call.latency, fault = sim.faults.draw(config.faults[endpoint])
    if fault is Fault.TOKEN_EXPIRED:
        sim.tokens.expire(request.headers["Authorization"])
        return await call.answer(
            call.error(
                401,
                "authentication",
                TokenCheck.EXPIRED.value,
                "Authorization failed",
                _TOKEN_DETAIL[TokenCheck.EXPIRED],
            ),
            fault,
        )
    failure = fault if fault in _FAILURES else None
    if failure is not None and (action is None or not config.errors_after_apply):
        return await call.fail(failure)

    too_large = config.max_body_bytes is not None and body_bytes > config.max_body_bytes
    if too_large:
        response = call.error(
            413,
            "validation",
            "request-entity-too-large",
            "Request entity too large",
            f"The request body may not exceed {config.max_body_bytes} bytes",
        )
    elif action is not None and client.scope != "manage":
        response = call.error(
            403,
            "authorization",
            "insufficient-scope",
            "Insufficient scope",
            "This client may only read",
        )
    elif line_item_id is None or (li := sim.state.line_items.get(line_item_id)) is None:
        response = call.error(
            404,
            "validation",
            "line-item-not-found",
            "Line item not found",
            f"Line item {request.match_info['line_item_id']} does not exist",
        )
    elif li.account_id not in sim.state.consents.get(client.client_id, frozenset()):
        response = call.error(
            403,
            "access-control",
            "account-not-authorized",
            "No consent for this account",
            "The client has no consent for the line item's account",
        )
    elif action is None:
        response = _get_products(call, li.products)
    elif data is None:
        response = call.error(
            400,
            "validation",
            "invalid-request-body",
            "Invalid request body",
            "The body must be a JSON object with a 'data' array",
        )
    elif config.ids_cap is not None and (ids := _unique_ids(data)) > config.ids_cap:
        response = _json(
            envelope(
                [
                    {
                        **call.problem(
                            400,
                            "validation",
                            "exceeded-ids-cap",
                            f"Requests are capped for {config.ids_cap} unique ids,"
                            f" {ids} were provided",
                            f"Requests are capped for {config.ids_cap} unique ids,"
                            f" {ids} were provided",
                        ),
                        "source": {"ids": "data/attributes/ids"},
                    }
                ]
            ),
            400,
            call.headers,
        )
    else:
        ignore_bids = fault is Fault.BID_IGNORED and action == "append"
        problems = apply_write(
            sim.state,
            li,
            action,
            data,
            cap=config.products_cap,
            all_or_nothing=config.validation_mode in ("a", "b"),
            ignore_bid_updates=ignore_bids,
        )
        if ignore_bids and not problems:
            return await call.answer(web.Response(status=204, headers=call.headers), fault)
        response = _write_response(call, action, problems)
    if failure is not None:
        return await call.fail(failure)
    return await call.answer(response)


_TOKEN_DETAIL = {
    TokenCheck.MISSING: "No bearer token was given",
    TokenCheck.INVALID: "The bearer token is not valid",
    TokenCheck.EXPIRED: "The bearer token has expired",
}


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _unique_ids(data: list[Any]) -> int:
    return len({item.get("id") for item in data if isinstance(item, dict)})


def _data(raw: bytes) -> list[Any] | None:
    """The `data` array of a write body, or None when the body is not of that shape."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, list) else None


def _get_products(call: _Call, products: Mapping[str, Any]) -> web.Response:
    query = call.request.query
    try:
        offset = int(query.get("offset", "0"))
        limit = int(query.get("limit", "500"))
    except ValueError:
        offset = limit = -1
    config = call.sim.config
    if offset < 0 or limit < 1:
        return call.error(
            400,
            "validation",
            "invalid-paging",
            "Invalid paging",
            "offset must be >= 0 and limit >= 1",
        )
    if config.max_page_limit is not None and limit > config.max_page_limit:
        return call.error(
            400,
            "validation",
            "invalid-paging",
            "Invalid paging",
            f"limit must be at most {config.max_page_limit}",
        )
    applied = min(limit, config.page_cap) if config.page_cap is not None else limit
    fields = {f.strip() for f in query.get("fields", "status").split(",") if f.strip()}
    if not fields <= FIELDS:
        return call.error(
            400,
            "validation",
            "invalid-fields",
            "Invalid fields",
            f"fields may only name {', '.join(sorted(FIELDS))}",
        )
    with_bid, with_status = "bidOverride" in fields, "status" in fields
    data = []
    for product in islice(products.values(), offset, offset + applied):
        attributes: dict[str, Any] = {"id": product.sku}
        if with_bid:
            attributes["bidOverride"] = None if product.bid is None else float(product.bid)
        if with_status:
            attributes["status"] = product.status
        data.append(
            {"id": product.sku, "type": "RetailMediaPromotedProduct", "attributes": attributes}
        )
    body: dict[str, Any] = {"data": data, "warnings": [], "errors": []}
    if config.page_meta != "none":
        meta: dict[str, Any] = {
            "count": len(products),
            "limit": limit if config.page_meta == "asked-limit" else applied,
            "offset": offset,
            "responseCount": len(data),
        }
        if config.page_meta == "no-count":
            del meta["count"]
        body["meta"] = meta
    return _json(body, headers=call.headers)


def _write_response(call: _Call, action: Action, problems: list[ItemProblem]) -> web.Response:
    mode = call.sim.config.validation_mode
    if not problems:
        success = call.sim.config.write_success
        if success == "200" or (success == "mixed" and action == "append"):
            return _json(envelope(), headers=call.headers)
        return web.Response(status=204, headers=call.headers)
    config = call.sim.config
    reported: list[Problem] = []
    if mode in ("a", "c"):
        for item in problems:
            shaped = named(item, config.naming)
            p = call.problem(400, "validation", item.code, shaped["title"], shaped["detail"])
            reported.append({**p, **shaped})
    else:
        reported = [
            call.problem(400, "validation", p["code"], p["title"], p["detail"])
            for p in anonymous(problems, config.anonymous_count)
        ]
    if mode in ("a", "b"):
        return _json(envelope(errors=reported), 400, call.headers)
    return _json(envelope(warnings=reported), 200, call.headers)


# --- the inspection surface -------------------------------------------------------------------


async def sim_state(request: web.Request) -> web.Response:
    line_item = request.query.get("line_item")
    line_item_id = _int(line_item) if line_item is not None else None
    if line_item is not None and line_item_id is None:
        raise web.HTTPBadRequest(text="line_item must be an integer")
    return _json(request.app[SIM].state.snapshot(line_item_id))


async def sim_requests(request: web.Request) -> web.Response:
    query = request.query
    since = _int(query.get("since", "0"))
    limit = _int(query.get("limit", "1000"))
    if since is None or limit is None or since < 0 or limit < 0:
        raise web.HTTPBadRequest(text="since and limit must be integers >= 0")
    with_writes = query.get("write_counts", "1") not in ("0", "false")
    return _json(request.app[SIM].log.summary(since, limit, with_writes))


async def sim_reset(request: web.Request) -> web.Response:
    body = await request.json() if request.can_read_body else {}
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='the body, if any, is {"config": true|false}')
    request.app[SIM].reset(with_config=bool(body.get("config", False)))
    return _json({"reset": True})


async def sim_scenario(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    try:
        scenario = Scenario.model_validate_json(await request.read())
    except ValidationError as exc:
        return _json({"error": exc.errors(include_url=False)}, 400)
    sim.scenario = scenario
    sim.reset()
    return _json({"line_items": len(sim.state.line_items)})


async def sim_config(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    if request.method == "POST":
        try:
            sim.config = sim.config.updated(await request.json())
        except (ValidationError, ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
    return _json(sim.config.model_dump(mode="json"))


def create_app(
    scenario: Scenario, *, seed: int = 0, config: SimConfig | None = None
) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SIM] = Simulator(scenario, seed, config or SimConfig())
    app.router.add_post("/oauth2/token", token_endpoint)
    base = "/{version}/retail-media/line-items/{line_item_id}/products"
    app.router.add_get(base, products_endpoint, allow_head=False)
    app.router.add_post(base + "/{action}", products_endpoint)
    app.router.add_get("/_sim/state", sim_state)
    app.router.add_get("/_sim/requests", sim_requests)
    app.router.add_post("/_sim/reset", sim_reset)
    app.router.add_post("/_sim/scenario", sim_scenario)
    app.router.add_get("/_sim/config", sim_config)
    app.router.add_post("/_sim/config", sim_config)
    return app


class RunningSimulator:
    """A simulator serving from a background thread with its own event loop."""

    def __init__(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop,
        runner: web.AppRunner,
        thread: threading.Thread,
    ) -> None:
        self.port = port
        self.url = f"http://{host}:{port}"
        self._loop = loop
        self._runner = runner
        self._thread = thread

    def stop(self) -> None:
        """Stop serving; requests still hanging are cancelled."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    async def _shutdown(self) -> None:
        """Close the server, then cancel handlers still running (hangs, latency)."""
        await self._runner.cleanup()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


def start_in_thread(
    scenario: Scenario | None = None,
    *,
    seed: int = 0,
    host: str = "127.0.0.1",
    port: int = 0,
    config: SimConfig | None = None,
) -> RunningSimulator:
    """Start a simulator on `port` (0: a free one) and return once it accepts connections."""
    app = create_app(scenario or generate(seed), seed=seed, config=config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="criteo-simulator", daemon=True)
    thread.start()

    async def serve() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, host, port, backlog=1024).start()
        return runner, int(runner.addresses[0][1])

    runner, bound = asyncio.run_coroutine_threadsafe(serve(), loop).result(30)
    return RunningSimulator(host, bound, loop, runner, thread)


def run_forever(host: str, port: int, scenario_file: Path | None, seed: int | None) -> None:
    """Serve until interrupted: the scenario file if given, else one generated from `seed`."""
    scenario = Scenario.from_file(scenario_file) if scenario_file else generate(seed or 0)
    app = create_app(scenario, seed=seed or 0)
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        shutdown_timeout=1.0,
        print=lambda _: print(f"Criteo API simulator on http://{host}:{port}", flush=True),
    )
