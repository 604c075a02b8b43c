"""What every console handler shares: the app's parts, the signed-in caller, page rendering."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from jinja2 import Environment

from worker.console.live import HealthCache
from worker.console.render import page
from worker.console.sessions import ConsoleSession, Signer
from worker.domain.access import Caller
from worker.jobs.service import Jobs

JOBS = web.AppKey("console_jobs", Jobs)
SIGNER = web.AppKey("console_signer", Signer)
HEALTH = web.AppKey("console_health", HealthCache)
TEMPLATES = web.AppKey("console_templates", Environment)
SESSION = web.RequestKey("console_session", ConsoleSession)
CALLER = web.RequestKey("console_caller", Caller)

T = TypeVar("T")


def jobs_for(request: web.Request) -> Jobs:
    """The application layer, asked by the signed-in key."""
    return request.app[JOBS].acting_as(request[CALLER])


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Database work runs in a thread: the event loop keeps serving other pages."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def csrf_token(request: web.Request) -> str:
    session = request.get(SESSION)
    return request.app[SIGNER].csrf_token(session.sid) if session else ""


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A page (or fragment) with what every page shows: who is signed in, the CSRF token and
    the health strip."""
    caller = request.get(CALLER)
    body = page(
        request.app[TEMPLATES],
        template,
        {
            "caller": caller,
            "csrf": csrf_token(request),
            "health": request.app[HEALTH].current() if caller else None,
            "sweep_interval": request.app[JOBS].settings.sweep_interval_seconds,
            "path": request.path_qs,
            **context,
        },
    )
    return web.Response(status=status, text=body, content_type="text/html")


def see_other(location: str) -> web.Response:
    """303: after a form, or to the sign-in page (returned, not raised, so the guard can add
    its headers)."""
    return web.Response(status=303, headers={"Location": location})


def is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"
