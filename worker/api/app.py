"""The aiohttp application: problem-details errors, bearer-key auth, a body size limit, routes."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from worker.api.openapi import OPERATIONS, openapi_document
from worker.api.problems import Problem, for_error, problem_response
from worker.api.routes import CALLER, JOBS, METRICS, OPENAPI, routes
from worker.jobs.errors import JobsError
from worker.jobs.service import Jobs
from worker.metrics import state_registry

log = logging.getLogger("promobulk.api")
# The routes the OpenAPI document marks public: /healthz, the document itself (no data), and
# /metrics (counts only, no job content, for a Prometheus on the private network; keep the API's
# port off the internet or filter /metrics at the proxy).
PUBLIC = frozenset(operation.path for operation in OPERATIONS if operation.public)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="promobulk"'}


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as application/problem+json; an unexpected one says nothing of why."""
    try:
        return await handler(request)
    except JobsError as error:
        problem = for_error(error)
        return problem_response(problem.status, problem.detail, **problem.extra)
    except Problem as problem:
        return problem_response(problem.status, problem.detail, **problem.extra)
    except web.HTTPException as http:
        if http.status < 400:
            raise
        headers = {k: v for k, v in http.headers.items() if k in ("Allow", "WWW-Authenticate")}
        return problem_response(http.status, http.reason, headers=headers)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return problem_response(500, "an unexpected error; it was logged")


@web.middleware
async def bearer_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route but the public ones needs `Authorization: Bearer <key>`; the key's name is the
    submitter and its role what it may do. Failures say nothing of the key that was sent."""
    if request.path in PUBLIC:
        return await handler(request)
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return problem_response(401, "send Authorization: Bearer <API key>", headers=CHALLENGE)
    caller = await asyncio.to_thread(request.app[JOBS].keys.caller, key.strip())
    if caller is None:
        return problem_response(401, "the API key is unknown or revoked", headers=CHALLENGE)
    request[CALLER] = caller
    return await handler(request)


def create_app(jobs: Jobs, *, queue_depth: Callable[[], int] | None = None) -> web.Application:
    """`queue_depth` counts the messages waiting in the broker, for `/metrics`."""
    app = web.Application(
        middlewares=[problems, bearer_key], client_max_size=jobs.settings.api_max_body_bytes
    )
    app[JOBS] = jobs
    app[METRICS] = state_registry(jobs.status_counts, queue_depth)
    app.add_routes(routes)
    app[OPENAPI] = json.dumps(openapi_document()).encode()
    return app


def run_api(host: str, port: int) -> None:
    """Serve until interrupted, dispatching on the Celery broker of the settings."""
    from worker.config import get_settings
    from worker.logs import configure_logging
    from worker.tasks import dispatch_chunks, waiting_messages

    settings = get_settings()
    configure_logging(settings)
    app = create_app(Jobs.open(settings, dispatch_chunks), queue_depth=waiting_messages)
    log.info("API listening on %s:%d", host, port)
    web.run_app(app, host=host, port=port, print=None)
