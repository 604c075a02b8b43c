"""For other Python systems: a small synchronous client of the HTTP API, and `send_job` for
Celery apps that would rather put a job on promobulk's queue than speak HTTP.

    client = PromobulkClient("http://promobulk:8000", api_key)
    job = client.submit([{"line_item_id": 42, "sku_id": "A1", "action": "set_bid",
                          "bid_override": "0.85"}], idempotency_key="reprice-2026-11-23")
    done = client.wait(job["id"])
    for item in client.items(job["id"], status="failed"): ...

Standard library only (urllib), so it adds nothing to the caller's dependencies.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import IO, Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

SUBMIT_TASK = "promobulk.submit_job"
SUBMIT_QUEUE = "promobulk.normal"
FINISHED = frozenset({"succeeded", "completed_with_failures", "failed", "cancelled"})


class ApiError(Exception):
    """A refusal from the API; `problem` is its problem document (`errors` lists bad rows)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {problem.get('detail', problem.get('title', ''))}")
        self.status = status
        self.problem = problem

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.problem.get("errors", []))


def _fields(**fields: Any) -> dict[str, Any]:
    """Request fields with the unset ones left out and times as ISO 8601."""
    return {
        k: v.isoformat() if isinstance(v, datetime) else v
        for k, v in fields.items()
        if v is not None
    }


def _query_value(value: Any) -> Any:
    """A job field as a CSV submission's query parameter: options as JSON, flags as text."""
    if isinstance(value, Mapping):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else value


class PromobulkClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"PromobulkClient({self.base_url!r})"

    def _open(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        url = self.base_url + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Authorization": f"Bearer {self._key}", "Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        request = Request(url, data=body, method=method, headers=headers)  # noqa: S310
        try:
            return urlopen(request, timeout=self.timeout)  # noqa: S310
        except HTTPError as error:
            with error:
                raw = error.read()
            try:
                problem = json.loads(raw)
            except ValueError:
                problem = {"detail": raw[:500].decode(errors="replace")}
            raise ApiError(error.code, problem) from None

    def _call(self, method: str, path: str, payload: Any = None, **query: Any) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        with self._open(method, path, query=query, body=body) as response:
            return json.loads(response.read())

    def submit(self, items: Iterable[Mapping[str, Any]], **fields: Any) -> dict[str, Any]:
        """Submit a job of items (dicts with the CSV's columns); returns the job. `fields` are
        the job's fields of the API (`idempotency_key`, `priority`, `dry_run`,
        `callback_url`, `not_before` as a datetime or ISO text, `options` as a dict)."""
        return dict(self._call("POST", "/v1/jobs", {"items": list(items), **_fields(**fields)}))

    def submit_csv(self, data: bytes, **fields: Any) -> dict[str, Any]:
        """Submit a CSV file's bytes as they are, with the job's fields of `submit`; returns
        the job."""
        query = {
            k: json.dumps(v)
            if isinstance(v, Mapping)
            else str(v).lower()
            if isinstance(v, bool)
            else v
            for k, v in _fields(**fields).items()
        }
        with self._open(
            "POST", "/v1/jobs", query=query, body=data, content_type="text/csv"
        ) as response:
            return dict(json.loads(response.read()))

    def job(self, job_id: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/jobs/{job_id}"))

    def jobs(
        self, *, status: str | None = None, submitted_by: str | None = None, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Every matching job, newest first, page by page."""
        cursor = None
        while True:
            page = self._call(
                "GET",
                "/v1/jobs",
                status=status,
                submitted_by=submitted_by,
                cursor=cursor,
                limit=page_size,
            )
            yield from page["jobs"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def items(
        self, job_id: int, *, page_size: int = 1000, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Every matching item of a job in input order; filters: status, error_kind,
        line_item_id, sku_id."""
        cursor = None
        while True:
            page = self._call(
                "GET", f"/v1/jobs/{job_id}/items", cursor=cursor, limit=page_size, **filters
            )
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def export_csv(self, job_id: int, out: IO[bytes], **filters: Any) -> None:
        """Stream the items as CSV into a binary file; fixed, it can be submitted again."""
        with self._open(
            "GET",
            f"/v1/jobs/{job_id}/items",
            query={**filters, "format": "csv"},
            accept="text/csv",
        ) as response:
            shutil.copyfileobj(response, out)

    def retry(
        self,
        job_id: int,
        *,
        error_kinds: Sequence[str] | None = None,
        options: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """A child job of the failed SKUs (of these error kinds only, when given)."""
        fields = _fields(
            error_kinds=None if error_kinds is None else list(error_kinds),
            options=options,
            idempotency_key=idempotency_key,
        )
        return dict(self._call("POST", f"/v1/jobs/{job_id}/retry", fields))

    def revert(self, job_id: int, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """A child job that restores the before-values of the SKUs the job changed."""
        fields = _fields(idempotency_key=idempotency_key)
        return dict(self._call("POST", f"/v1/jobs/{job_id}/revert", fields))

    def cancel(self, job_id: int) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/jobs/{job_id}/cancel"))

    def wait(
        self, job_id: int, *, poll_seconds: float = 2.0, timeout: float | None = None
    ) -> dict[str, Any]:
        """Poll until the job ends; raises TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in FINISHED:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['status']}")
            time.sleep(poll_seconds)


def send_job(
    celery_app: Any,
    items: Sequence[Mapping[str, Any]],
    *,
    submitted_by: str,
    **fields: Any,
) -> Any:
    """Put a job on promobulk's queue from another Celery app (same broker): the task
    `promobulk.submit_job` stores it as `submit` would. Fields: idempotency_key, priority,
    dry_run, callback_url, not_before, options. A refused job is logged by the worker; use an
    idempotency key (and a callback_url) to learn what became of it."""
    kwargs = {"submitted_by": submitted_by, "items": list(items), **_fields(**fields)}
    return celery_app.send_task(SUBMIT_TASK, kwargs=kwargs, queue=SUBMIT_QUEUE)
