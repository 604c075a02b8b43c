"""The console served for real, in process, on the session's database, without a browser: who
gets in, which forms are accepted, what the pages and the download hold. (The browser tests in
tests/e2e/test_console.py drive the same pages in Chromium.)"""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

import pytest
import sqlalchemy as sa

from tests.integration.api.conftest import serve
from tests.jobs import make_jobs, submit_rows
from worker.api import create_app
from worker.console import add_console
from worker.console.sessions import Signer
from worker.domain.enums import Role
from worker.health import Health

# A start far enough ahead that nothing runs during the test, inside the not_before window.
LATER = (datetime.now(UTC) + timedelta(days=300)).isoformat()

SECRET = b"integration-console-secret-0123456789"


@dataclass
class Page:
    status: int
    headers: http.client.HTTPMessage
    body: str

    @property
    def csrf(self) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.body)
        assert found, self.body[:500]
        return found.group(1)


@dataclass
class Browser:
    url: str
    cookies: dict[str, str] = field(default_factory=dict)

    def go(
        self,
        method: str,
        path: str,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Page:
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        sent = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        page = Page(response.status, response.headers, response.read().decode())
        connection.close()
        return page

    def sign_in(self, key: str) -> Page:
        form = self.go("GET", "/sign-in")
        return self.go("POST", "/sign-in", {"csrf_token": form.csrf, "key": key, "next": "/"})


def _health() -> Health:
    return Health(["celery@test"], None, 0, None, 6000)


@pytest.fixture(scope="module")
def console_url(engine: sa.Engine) -> Iterator[str]:
    jobs = make_jobs(engine)
    app = create_app(jobs)
    add_console(app, jobs, secret=SECRET, health=_health)
    with serve(app) as url:
        yield url


@pytest.fixture
def keys(engine: sa.Engine) -> dict[str, str]:
    jobs = make_jobs(engine)
    stamp = time.monotonic_ns()
    return {
        role.value: jobs.keys.create(f"console-{role.value}-{stamp}", role).key for role in Role
    }


def test_pages_need_a_session_while_the_api_keeps_its_bearer_keys(console_url: str) -> None:
    browser = Browser(console_url)
    page = browser.go("GET", "/jobs/1?status=failed")
    assert page.status == 303
    assert page.headers["Location"] == "/sign-in?next=%2Fjobs%2F1%3Fstatus%3Dfailed"
    fragment = browser.go("GET", "/health", headers={"HX-Request": "true"})
    assert fragment.headers["HX-Redirect"].startswith("/sign-in")
    api = browser.go("GET", "/v1/jobs")
    assert api.status == 401
    assert api.headers["Content-Type"].startswith("application/problem+json")
    assert browser.go("GET", "/healthz").status == 200
    assert (
        browser.go("GET", "/v1/nowhere")
        .headers["Content-Type"]
        .startswith("application/problem+json")
    )
    static = browser.go("GET", "/static/console.js")
    assert static.status == 200
    assert "Content-Security-Policy" in static.headers


def test_sign_in_sets_a_strict_session_cookie_and_never_keeps_the_key(
    console_url: str, keys: dict[str, str]
) -> None:
    browser = Browser(console_url)
    refused = browser.sign_in("pbk_wrong")
    assert refused.status == 401
    assert "promobulk_session" not in browser.cookies
    no_token = browser.go("POST", "/sign-in", {"key": keys["read"]})
    assert no_token.status == 403
    signed = browser.sign_in(keys["read"])
    assert signed.status == 303
    cookie = next(
        h for h in signed.headers.get_all("Set-Cookie") or [] if "promobulk_session=" in h
    )
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert keys["read"] not in cookie
    assert keys["read"][4:20] not in cookie
    page = browser.go("GET", "/")
    assert page.status == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert "Signed in as" in page.body
    out = browser.go("POST", "/sign-out", {"csrf_token": page.csrf})
    assert out.status == 303
    assert browser.go("GET", "/").status == 303


def test_a_tampered_or_foreign_session_and_a_revoked_key_are_signed_out(
    console_url: str, keys: dict[str, str], engine: sa.Engine
) -> None:
    browser = Browser(console_url)
    browser.sign_in(keys["operate"])
    body, _, mac = browser.cookies["promobulk_session"].partition(".")
    browser.cookies["promobulk_session"] = body[:-2] + "xx." + mac
    assert browser.go("GET", "/").status == 303
    _, foreign = Signer(b"another-secret-of-32-bytes-.....").new_session(1, "x", Role.OPERATE)
    browser.cookies["promobulk_session"] = foreign
    assert browser.go("GET", "/").status == 303
    browser.sign_in(keys["operate"])
    assert browser.go("GET", "/").status == 200
    jobs = make_jobs(engine)
    key_id = next(k.id for k in jobs.keys.list() if keys["operate"].startswith(k.prefix))
    jobs.keys.revoke(key_id)
    assert browser.go("GET", "/").status == 303


def test_forms_need_their_token_and_this_origin(
    console_url: str, keys: dict[str, str], engine: sa.Engine
) -> None:
    job = submit_rows(
        engine,
        [{"line_item_id": 77, "sku_id": "s", "action": "pause"}],
        not_before=LATER,
    )
    browser = Browser(console_url)
    browser.sign_in(keys["operate"])
    confirm = browser.go("GET", f"/jobs/{job.id}/cancel")
    assert "1 SKU</strong> not processed yet" in confirm.body
    path = f"/jobs/{job.id}/cancel"
    assert browser.go("POST", path, {}).status == 403
    assert browser.go("POST", path, {"csrf_token": "x" + confirm.csrf[1:]}).status == 403
    elsewhere = {"Origin": "https://evil.example"}
    assert browser.go("POST", path, {"csrf_token": confirm.csrf}, elsewhere).status == 403
    assert make_jobs(engine).summary(job.id).status.value == "queued"
    done = browser.go("POST", path, {"csrf_token": confirm.csrf})
    assert done.status == 303
    assert make_jobs(engine).summary(job.id).status.value == "cancelled"


def test_roles_decide_what_is_shown_and_what_is_allowed(
    console_url: str, keys: dict[str, str], engine: sa.Engine
) -> None:
    job = submit_rows(
        engine,
        [{"line_item_id": 78, "sku_id": "s", "action": "pause"}],
        submitted_by="someone-else",
        not_before=LATER,
    )
    reader = Browser(console_url)
    reader.sign_in(keys["read"])
    page = reader.go("GET", f"/jobs/{job.id}")
    assert page.status == 200
    assert "Cancel…" not in page.body
    assert "New job" not in page.body
    refused = reader.go("POST", f"/jobs/{job.id}/cancel", {"csrf_token": page.csrf})
    assert refused.status == 403
    submitter = Browser(console_url)
    submitter.sign_in(keys["submit"])
    assert submitter.go("GET", f"/jobs/{job.id}").status == 404
    assert submitter.go("GET", f"/jobs/{job.id}/items.csv").status == 404
    assert f"#{job.id}<" not in submitter.go("GET", "/").body
    make_jobs(engine).cancel(job.id)


def test_pasted_rows_make_a_job_and_bad_ones_are_listed_by_row(
    console_url: str, keys: dict[str, str], engine: sa.Engine
) -> None:
    browser = Browser(console_url)
    browser.sign_in(keys["submit"])
    form = browser.go("GET", "/jobs/new")
    bad = browser.go(
        "POST",
        "/jobs/new",
        {"csrf_token": form.csrf, "rows": "79,a,set_bid,\n79,b,fly,\n", "dry_run": "on"},
    )
    assert bad.status == 400
    assert "Refused, nothing stored: 2 problems" in bad.body
    assert "79,a,set_bid," in bad.body  # the pasted rows are kept to be fixed
    pasted = "79\ta\tset_bid\t0.5\n79\tb\tpause\t\n"  # cells copied from a spreadsheet
    made = browser.go(
        "POST",
        "/jobs/new",
        {"csrf_token": form.csrf, "rows": pasted, "priority": "high", "max_bid": "2"},
    )
    assert made.status == 303
    job_id = int(made.headers["Location"].rsplit("/", 1)[1])
    job = make_jobs(engine).get(job_id)
    assert job.total == 2
    assert job.priority.value == "high"
    assert job.options.max_bid == "2.00"
    csv = browser.go("GET", f"/jobs/{job_id}/items.csv?action=x&sku_id=b")
    assert csv.headers["Content-Disposition"] == f'attachment; filename="job-{job_id}-items.csv"'
    assert csv.body.splitlines()[1].startswith("79,b,pause,")
    assert len(csv.body.splitlines()) == 2
    make_jobs(engine).cancel(job_id)
