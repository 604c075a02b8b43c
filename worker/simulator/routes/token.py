"""`POST /oauth2/token`: client credentials in, a bearer token out (or 400/401 as Criteo's)."""

from __future__ import annotations

from aiohttp import web

from worker.simulator.routes.call import FAILURES, Call, json_response
from worker.simulator.simulator import SIM


async def token_endpoint(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    log = sim.log
    entry = log.start("token", request.method, request.path)
    form = await request.post()
    client_id = str(form.get("client_id", ""))
    config = sim.config
    call = Call(
        sim,
        log,
        entry,
        request,
        sim.limiter.peek(client_id, config.rate_limit_per_minute).headers(),
    )
    call.latency, fault = sim.faults.draw(config.faults["token"])
    if fault in FAILURES:
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
    return await call.answer(json_response(body, headers=call.headers))
