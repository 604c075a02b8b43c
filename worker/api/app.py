"""The aiohttp application: problem-details errors, bearer-key auth, a body size limit, routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker.api.auth import submitter_for
from worker.api.problems import Problem, problem_response
from worker.api.routes import DISPATCH, ENGINE, METRICS, SETTINGS, SUBMITTER, routes
from worker.config import Settings
from worker.db.repository import Repository
from worker.metrics import state_registry
from worker.submission import Dispatch

log = logging.getLogger("promobulk.api")
# /metrics is public like /healthz: counts only, no job content, for a Prometheus on the
# private network; keep the API's port off the internet or filter /metrics at the proxy.
PUBLIC = frozenset({"/healthz", "/metrics"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="promobulk"'}


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as application/problem+json; an unexpected one says nothing of why."""
    try:
        return await handler(request)
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
    """Every route but health needs `Authorization: Bearer <key>`; the key's name is the
    submitter. Failures say nothing of the key that was sent."""
    if request.path in PUBLIC:
        return await handler(request)
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return problem_response(401, "send Authorization: Bearer <API key>", headers=CHALLENGE)
    submitter = await asyncio.to_thread(submitter_for, request.app[ENGINE], key.strip())
    if submitter is None:
        return problem_response(401, "the API key is unknown or revoked", headers=CHALLENGE)
    request[SUBMITTER] = submitter
    return await handler(request)


def _status_counts(engine: Engine) -> tuple[dict[str, int], dict[str, int]]:
    with Session(engine) as session:
        return Repository(session).status_counts()


def create_app(
    engine: Engine,
    settings: Settings,
    dispatch: Dispatch | None,
    *,
    queue_depth: Callable[[], int] | None = None,
) -> web.Application:
    """`dispatch` sends the chunks of new jobs to the workers (None: they wait for beat);
    `queue_depth` counts the messages waiting in the broker, for `/metrics`."""
    app = web.Application(
        middlewares=[problems, bearer_key], client_max_size=settings.api_max_body_bytes
    )
    app[ENGINE] = engine
    app[SETTINGS] = settings
    app[DISPATCH] = dispatch
    app[METRICS] = state_registry(partial(_status_counts, engine), queue_depth)
    app.add_routes(routes)
    return app


def run_api(host: str, port: int) -> None:
    """Serve until interrupted, dispatching on the Celery broker of the settings."""
    from worker.config import get_settings
    from worker.db.engine import get_engine
    from worker.logs import configure_logging
    from worker.tasks import dispatch_chunks, waiting_messages

    settings = get_settings()
    configure_logging(settings)
    app = create_app(get_engine(), settings, dispatch_chunks, queue_depth=waiting_messages)
    log.info("API listening on %s:%d", host, port)
    web.run_app(app, host=host, port=port, print=None)
