"""`/_sim/`: what tests and benchmarks read and set on a running simulator (not Criteo's)."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from worker.simulator.routes.call import int_or_none, json_response
from worker.simulator.scenario import Scenario
from worker.simulator.simulator import SIM


async def sim_state(request: web.Request) -> web.Response:
    line_item = request.query.get("line_item")
    line_item_id = int_or_none(line_item) if line_item is not None else None
    if line_item is not None and line_item_id is None:
        raise web.HTTPBadRequest(text="line_item must be an integer")
    return json_response(request.app[SIM].state.snapshot(line_item_id))


async def sim_requests(request: web.Request) -> web.Response:
    query = request.query
    since = int_or_none(query.get("since", "0"))
    limit = int_or_none(query.get("limit", "1000"))
    if since is None or limit is None or since < 0 or limit < 0:
        raise web.HTTPBadRequest(text="since and limit must be integers >= 0")
    with_writes = query.get("write_counts", "1") not in ("0", "false")
    return json_response(request.app[SIM].log.summary(since, limit, with_writes))


async def sim_reset(request: web.Request) -> web.Response:
    body = await request.json() if request.can_read_body else {}
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='the body, if any, is {"config": true|false}')
    request.app[SIM].reset(with_config=bool(body.get("config", False)))
    return json_response({"reset": True})


async def sim_scenario(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    try:
        scenario = Scenario.model_validate_json(await request.read())
    except ValidationError as exc:
        return json_response({"error": exc.errors(include_url=False)}, 400)
    sim.scenario = scenario
    sim.reset()
    return json_response({"line_items": len(sim.state.line_items)})


async def sim_config(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    if request.method == "POST":
        try:
            sim.config = sim.config.updated(await request.json())
        except (ValidationError, ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
    return json_response(sim.config.model_dump(mode="json"))
