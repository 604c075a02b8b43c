"""The console mounted on the API's application: same process, same `Jobs`, pages at `/`.

The API keeps `/v1/`, `/healthz` and `/metrics`; every other path is the console's. Its
middleware (`auth.guard`) acts on console paths only, as the API's act on API paths only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from worker.api.app import CONSOLE_MOUNTED, for_api
from worker.console import actions, auth, pages
from worker.console.context import HEALTH, JOBS, SIGNER, TEMPLATES
from worker.console.live import HealthCache
from worker.console.render import STATIC_DIR, environment
from worker.console.sessions import Signer
from worker.health import Health
from worker.jobs.service import Jobs


@web.middleware
async def console_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if for_api(request):
        return await handler(request)
    return await auth.guard(request, handler)


def add_console(
    app: web.Application, jobs: Jobs, *, secret: bytes, health: Callable[[], Health]
) -> None:
    """Serve the console from `app` (the HTTP API's), on the same `Jobs`. `secret` signs the
    sessions; `health` reads the health strip's figures (see `worker.health.check`)."""
    app[CONSOLE_MOUNTED] = True
    app[JOBS] = jobs
    app[SIGNER] = Signer(secret)
    app[TEMPLATES] = environment()
    cache = HealthCache(health)
    app[HEALTH] = cache
    app.middlewares.append(console_guard)
    # /jobs/new before /jobs/{id}: the id routes take digits only, so either order is safe.
    app.add_routes(auth.routes)
    app.add_routes(actions.routes)
    app.add_routes(pages.routes)
    app.router.add_static("/static/", Path(STATIC_DIR), name="console.static")

    async def start_health(_: web.Application) -> None:
        cache.current()  # the first figures are ready before the first page asks

    async def close_health(_: web.Application) -> None:
        await cache.close()

    app.on_startup.append(start_health)
    app.on_cleanup.append(close_health)
