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
API_PREFIX = "/v1/"
# Set by `worker.console.add_console`: the console then answers every path the API does not.
CONSOLE_MOUNTED = web.AppKey("console_mounted", bool)


def for_api(request: web.Request) -> bool:
    """Is this request the API's: always without the console, else /v1/ and the public paths."""
    if not request.app.get(CONSOLE_MOUNTED, False):
        return True
    return request.path.startswith(API_PREFIX) or request.path in PUBLIC


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as application/problem+json; an unexpected one says nothing of why."""
    if not for_api(request):
        return await handler(request)
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
    if request.path in PUBLIC or not for_api(request):
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
    jobs = Jobs.open(settings, dispatch_chunks)
    app = create_app(jobs, queue_depth=waiting_messages)
    _add_console(app, jobs)
    log.info("API and console listening on %s:%d", host, port)
    web.run_app(app, host=host, port=port, print=None)


def _add_console(app: web.Application, jobs: Jobs) -> None:
    """The operations console at `/`, on the same `Jobs` (see `worker.console`)."""
    from worker.console import add_console
    from worker.console.secret import console_secret
    from worker.health import check
    from worker.logs import redactor
    from worker.stackfile import state_dir

    secret = console_secret(jobs.settings, state_dir())
    redactor.add([secret.decode()])
    add_console(app, jobs, secret=secret, health=lambda: check(jobs.settings))
