"""A real webhook endpoint for the notification tests: an aiohttp server on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.integration.api.conftest import serve


@dataclass
class Receiver:
    url: str
    answers: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def receiving(*answers: int) -> Iterator[Receiver]:
    """Records what it is sent and answers these statuses in turn, the last one ever after."""
    state = Receiver("", list(answers) or [200])

    async def hook(request: web.Request) -> web.Response:
        state.received.append((dict(request.headers), await request.read()))
        status = state.answers.pop(0) if len(state.answers) > 1 else state.answers[0]
        return web.Response(status=status, text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    with serve(app) as url:
        state.url = f"{url}/hook"
        yield state
