"""The console's speed on a big job: time to first byte of a job page and of filtered SKU pages,
through a real `promobulk api` process signed in with a read key, as a browser would ask.

aiohttp sends a page's headers once the whole page is rendered, so the time to first byte is
the server's whole work: the job's record, failures and children, one keyset page of items.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlencode

from worker.embedded import free_port
from worker.localstack import stop_process

TARGET_MS = 200
SAMPLES = 15


class _Browser:
    """Just enough of a browser: one connection, the console's cookies, a CSRF token."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, str] | None = None,
        key: str | None = None,
    ) -> tuple[float, int, str]:
        """Seconds to the first byte (status line and headers), the status, the body."""
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        first_byte = time.perf_counter() - started
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return first_byte, response.status, response.read().decode()

    def sign_in(self, key: str) -> None:
        _, _, page = self.request("GET", "/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        _, status, _ = self.request(
            "POST", "/sign-in", {"csrf_token": token.group(1), "key": key, "next": "/"}
        )
        if status != 303:
            raise RuntimeError(f"console sign-in answered {status}")


def _pages(job_id: int, item: Mapping[str, Any]) -> dict[str, str]:
    """What an operator opens on a big job: the page, then its SKUs filtered each way."""
    base = f"/jobs/{job_id}"
    return {
        "job page": base,
        "SKUs: unchanged": f"{base}?status=unchanged",
        "SKUs: failed": f"{base}?status=failed",
        "SKUs: one line item": f"{base}?line_item_id={item['line_item_id']}",
        "SKUs: one SKU": f"{base}?sku_id={quote(str(item['sku_id']))}",
        "SKUs: 500 a page": f"{base}?limit=500",
    }


def _timed(browser: _Browser, path: str, samples: int) -> dict[str, Any]:
    first, _, _ = browser.request("GET", path)  # cold: this process's first look at the job
    browser.request("GET", path)
    times = []
    for _ in range(samples):
        seconds, status, _ = browser.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
        times.append(seconds * 1000)
    times.sort()
    return {
        "path": path,
        "first_ms": round(first * 1000, 1),
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, round(0.95 * len(times)) - 1)], 1),
        "samples": samples,
    }


def measure(env: Mapping[str, str], job_id: int, samples: int = SAMPLES) -> dict[str, Any]:
    """Serve the console from its own `promobulk api` process on `env`'s database and time its
    pages of job `job_id`."""
    env = {**env, "PROMOBULK_CONSOLE_SECRET": secrets.token_urlsafe(32)}
    made = subprocess.run(
        [sys.executable, "-m", "worker", "api-key", "create", "bench-console", "--role", "read",
         "--json"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    key = json.loads(made.stdout)["key"]
    port = free_port()
    api = subprocess.Popen(  # noqa: S603 (our own entry point)
        [sys.executable, "-m", "worker", "api", "--port", str(port)],
        env={**env, "PROMOBULK_LOG_LEVEL": "warning"},
        start_new_session=True,
    )
    try:
        browser = _wait_for(port)
        browser.sign_in(key)
        _, _, first = browser.request("GET", f"/v1/jobs/{job_id}/items?limit=1", key=key)
        item = json.loads(first)["items"][0]
        total = _total(browser, job_id)
        wanted = _pages(job_id, item)
        pages = {name: _timed(browser, path, samples) for name, path in wanted.items()}
    finally:
        stop_process(api)
    worst = max(p["median_ms"] for p in pages.values())
    return {"job_id": job_id, "items": total, "pages": pages, "worst_median_ms": worst}


def _total(browser: _Browser, job_id: int) -> int:
    _, _, page = browser.request("GET", f"/jobs/{job_id}")
    found = re.search(r'aria-valuemax="(\d+)"', page)
    return int(found.group(1)) if found else 0


def _wait_for(port: int) -> _Browser:
    deadline = time.monotonic() + 60
    while True:
        try:
            browser = _Browser(port)
            browser.request("GET", "/healthz")
            return browser
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def lines(result: Mapping[str, Any]) -> list[str]:
    """The report's section."""
    out = [
        f"Job {result['job_id']} ({result['items']:,} SKUs), `promobulk api` signed in with a"
        " read key: time to first byte of the first request (the process's first look at the"
        " job: its failures are grouped then and kept once it has ended), median and p95 of"
        f" {SAMPLES} more:",
        "",
        "| page | first request | median | p95 |",
        "|---|---|---|---|",
    ]
    for name, p in result["pages"].items():
        out.append(
            f"| {name} (`{p['path']}`) | {p['first_ms']} ms | {p['median_ms']} ms"
            f" | {p['p95_ms']} ms |"
        )
    return out
