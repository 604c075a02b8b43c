"""Sign in with an API key, sign out, and the middleware that guards every console page: a
signed session, a live key behind it, a CSRF token on every form, and safe response headers."""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from worker.console.context import (
    CALLER,
    JOBS,
    SESSION,
    SIGNER,
    blocking,
    is_htmx,
    render,
    see_other,
)
from worker.console.sessions import (
    PRESESSION_COOKIE,
    PRESESSION_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    ConsoleSession,
)
from worker.jobs.errors import Forbidden, JobNotFound, JobsError, NothingToDo

log = logging.getLogger("promobulk.console")
routes = web.RouteTableDef()

SIGN_IN = "/sign-in"
PUBLIC_PREFIXES = ("/static/",)
# Scripts and styles from this server only: no inline script, no eval, nothing from elsewhere.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self';"
    " img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none';"
    " base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class Refusal(Exception):
    """Raise from a handler: an HTML page with this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _secure(request: web.Request) -> bool:
    """Over TLS, or behind a proxy that says it terminated TLS: the cookie is then Secure."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"


def _set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )


async def _session(request: web.Request) -> ConsoleSession | None:
    """The request's signed session, if its key is still live; its caller is set on the request
    from the database (name and role as they are now)."""
    session = request.app[SIGNER].session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    caller = await blocking(request.app[JOBS].keys.caller_by_id, session.key_id)
    if caller is None:
        return None
    request[SESSION] = session
    request[CALLER] = caller
    return session


def _public(request: web.Request) -> bool:
    return request.path == SIGN_IN or request.path.startswith(PUBLIC_PREFIXES)


def _to_sign_in(request: web.Request) -> web.StreamResponse:
    target = f"{SIGN_IN}?next={quote(request.path_qs, safe='')}"
    if is_htmx(request):  # a poll from a page whose session ended: take the whole page there
        return web.Response(status=204, headers={"HX-Redirect": target})
    return see_other(target)


async def _csrf_ok(request: web.Request, session: ConsoleSession | None) -> bool:
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        return False
    sid = session.sid if session else None
    if request.path == SIGN_IN:
        sid = request.app[SIGNER].presession_id(request.cookies.get(PRESESSION_COOKIE))
    token = request.headers.get("X-CSRF-Token")
    if token is None:
        form = await request.post()  # parsed once: the handler reads the same form
        value = form.get("csrf_token")
        token = value if isinstance(value, str) else None
    return request.app[SIGNER].csrf_ok(sid, token)


def _error_status(error: JobsError) -> int:
    if isinstance(error, JobNotFound):
        return 404
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, NothingToDo):
        return 409
    return 400


def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "error.html", status=status, status_code=status, message=message)


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    session = await _session(request)
    if session is None and not _public(request):
        return _to_sign_in(request)
    if request.method == "POST" and not await _csrf_ok(request, session):
        raise Refusal(
            403,
            "This form could not be checked: it expired, or it did not come from this console."
            " Reload the page and try again.",
        )
    return await handler(request)


async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sessions, CSRF and errors for console pages; every answer gets the security headers."""
    try:
        response = await _guarded(request, handler)
    except Refusal as refusal:
        response = _error_page(request, refusal.status, refusal.message)
    except JobsError as error:
        response = _error_page(request, _error_status(error), str(error))
    except web.HTTPException as http:
        if http.status < 400:
            raise
        response = _error_page(request, http.status, http.reason)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        response = _error_page(request, 500, "Something went wrong on our side; it was logged.")
    response.headers.update(HEADERS)
    if not request.path.startswith(PUBLIC_PREFIXES):
        response.headers["Cache-Control"] = "no-store"
    return response


# --- sign in and out ------------------------------------------------------------------------


def _next_path(value: object) -> str:
    """Back where the visitor was going, on this site only."""
    text = value if isinstance(value, str) else ""
    parts = urlsplit(text)
    if not text.startswith("/") or text.startswith("//") or parts.scheme or parts.netloc:
        return "/"
    return text


@routes.get(SIGN_IN, name="console.sign_in")
async def sign_in_page(request: web.Request) -> web.StreamResponse:
    if request.get(SESSION):
        return see_other(_next_path(request.query.get("next")))
    return _sign_in_form(request, next_path=_next_path(request.query.get("next")))


def _sign_in_form(
    request: web.Request, *, next_path: str, error: str | None = None, status: int = 200
) -> web.Response:
    signer = request.app[SIGNER]
    presession = signer.new_presession()
    sid = signer.presession_id(presession)
    assert sid is not None
    response = render(
        request,
        "sign_in.html",
        status=status,
        sign_in_csrf=signer.csrf_token(sid),
        next_path=next_path,
        error=error,
    )
    _set_cookie(request, response, PRESESSION_COOKIE, presession, PRESESSION_SECONDS)
    return response


@routes.post(SIGN_IN)
async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    key = form.get("key")
    next_path = _next_path(form.get("next"))
    found = None
    if isinstance(key, str) and key.strip():
        found = await blocking(request.app[JOBS].keys.sign_in, key.strip())
    if found is None:
        return _sign_in_form(
            request,
            next_path=next_path,
            error="That key is unknown or has been revoked.",
            status=401,
        )
    key_id, caller = found
    _, cookie = request.app[SIGNER].new_session(key_id, caller.name, caller.role)
    response = see_other(next_path)
    _set_cookie(request, response, SESSION_COOKIE, cookie, SESSION_SECONDS)
    response.del_cookie(PRESESSION_COOKIE, path="/")
    log.info("console sign-in by %s (%s)", caller.name, caller.role.value)
    return response


@routes.post("/sign-out", name="console.sign_out")
async def sign_out(request: web.Request) -> web.StreamResponse:
    response = see_other(SIGN_IN)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response
