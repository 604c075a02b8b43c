"""The promoted-products routes: `GET .../products` and `POST .../products/{action}`.

Each request goes through, in order: version (410 dead, 404 unknown), token (401), rate limit
(429), injected faults, body size (413), scope (403), line item (404), consent (403), the body's
shape and ids cap (400), the rules (400 or 200 with warnings, by validation mode). Config keys:
see `worker.simulator.config`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from itertools import islice
from typing import Any

from aiohttp import web

from worker.simulator.config import SimConfig
from worker.simulator.faults import Fault
from worker.simulator.problems import Problem, envelope
from worker.simulator.ratelimit import Quota
from worker.simulator.routes.call import FAILURES, Call, int_or_none, json_response
from worker.simulator.shapes import anonymous, named
from worker.simulator.simulator import SIM
from worker.simulator.state import Action, ItemProblem, apply_write
from worker.simulator.tokens import TokenCheck

ACTIONS: tuple[Action, ...] = ("append", "delete", "pause", "unpause")
FIELDS = frozenset({"id", "status", "bidOverride"})
_DEPRECATION_WINDOW = timedelta(days=92)


def _version_headers(config: SimConfig, version: str) -> dict[str, str]:
    """`Deprecation`/`Sunset` during a version's last three months."""
    sunset = config.sunsets.get(version)
    if sunset is None or not sunset - _DEPRECATION_WINDOW <= date.today() < sunset:
        return {}
    moment = datetime(sunset.year, sunset.month, sunset.day, tzinfo=UTC)
    return {"Deprecation": "true", "Sunset": format_datetime(moment, usegmt=True)}


async def products_endpoint(request: web.Request) -> web.StreamResponse:  # noqa: C901
    sim = request.app[SIM]
    action = request.match_info.get("action")
    if action is not None and action not in ACTIONS:
        raise web.HTTPNotFound()
    endpoint = action or "get"
    log, config = sim.log, sim.config
    entry = log.start(endpoint, request.method, request.path)
    line_item_id = int_or_none(request.match_info["line_item_id"])
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
    call = Call(sim, log, entry, request, {})
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
    failure = fault if fault in FAILURES else None
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
        response = json_response(
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


def _get_products(call: Call, products: Mapping[str, Any]) -> web.Response:
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
    return json_response(body, headers=call.headers)


def _write_response(call: Call, action: Action, problems: list[ItemProblem]) -> web.Response:
    mode = call.sim.config.validation_mode
    if not problems:
        success = call.sim.config.write_success
        if success == "200" or (success == "mixed" and action == "append"):
            return json_response(envelope(), headers=call.headers)
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
        return json_response(envelope(errors=reported), 400, call.headers)
    return json_response(envelope(warnings=reported), 200, call.headers)
