"""The handlers: parse the request, call one function of the product in a thread, answer.

Database work is blocking (SQLAlchemy, COPY), so every call runs in a worker thread and the
event loop stays free for other requests and for streaming exports.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker.api.csvstream import stream_text
from worker.api.openapi import OPENAPI
from worker.api.problems import Problem, rejected_rows
from worker.config import Settings
from worker.db.repository import Repository
from worker.domain.validation import INT64_MAX
from worker.jobdoc import job_document, job_summary
from worker.jobinput import InvalidField, job_request, submit_json
from worker.metrics import render
from worker.service import (
    Derived,
    InvalidQuery,
    JobNotFound,
    NothingToDo,
    cancel_job,
    export_items_csv,
    list_items,
    list_jobs,
    retry_failed,
    revert_job,
)
from worker.submission import Dispatch, SubmissionRejected, Submitted, submit_csv

ENGINE = web.AppKey("engine", Engine)
SETTINGS = web.AppKey("settings", Settings)
DISPATCH: web.AppKey[Dispatch | None] = web.AppKey("dispatch")
SUBMITTER = web.RequestKey("submitter", str)  # set by the auth middleware
METRICS = web.AppKey("metrics", CollectorRegistry)

CSV_MEDIA_TYPE = "text/csv"
T = TypeVar("T")

routes = web.RouteTableDef()


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, default=_plain),
        content_type="application/json",
        headers=headers,
    )


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _engine(request: web.Request) -> Engine:
    return request.app[ENGINE]


def _rate(request: web.Request) -> int:
    return request.app[SETTINGS].criteo_rate_limit_per_minute


def _dispatch(request: web.Request) -> Dispatch | None:
    return request.app[DISPATCH]


async def _blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


def _job_id(request: web.Request) -> int:
    raw = request.match_info["job_id"]
    if not raw.isdigit() or not 0 < int(raw) <= INT64_MAX:
        raise Problem(404, f"no job {raw[:40]!r}")
    return int(raw)


def _int(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if not value.isdigit() or not 0 < int(value) <= INT64_MAX:
        raise Problem(400, f"{name}: must be a positive integer")
    return int(value)


def _document(engine: Engine, job_id: int, rate: int) -> dict[str, Any]:
    with Session(engine) as session:
        try:
            return job_document(Repository(session), job_id, rate)
        except LookupError:
            raise Problem(404, f"no job {job_id}") from None


async def _created(request: web.Request, submitted: Submitted) -> web.Response:
    document = await _blocking(_document, _engine(request), submitted.job_id, _rate(request))
    return _json(
        document,
        status=201 if submitted.created else 200,
        headers={"Location": f"/v1/jobs/{submitted.job_id}"},
    )


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    def ping(engine: Engine) -> None:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    try:
        await _blocking(ping, _engine(request))
    except Exception:
        raise Problem(503, "the database does not answer") from None
    return _json({"status": "ok"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: jobs and chunks by status, the broker's queue depth."""
    body = await _blocking(render, request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/v1/openapi.json")
async def openapi(_: web.Request) -> web.Response:
    return _json(OPENAPI)


@routes.post("/v1/jobs")
async def create_job(request: web.Request) -> web.Response:
    """A JSON body, or a CSV body with the job's fields as query parameters."""
    settings = request.app[SETTINGS]
    body = await request.read()
    try:
        if request.content_type == CSV_MEDIA_TYPE:
            submitted = await _blocking(_submit_csv, request, body)
        elif request.content_type == "application/json":
            submitted = await _blocking(
                _submit_json, _engine(request), settings, body, request[SUBMITTER], request
            )
        else:
            raise Problem(415, "send application/json or text/csv")
    except SubmissionRejected as rejected:
        raise rejected_rows(rejected.errors, rejected.total_errors) from None
    except InvalidField as invalid:
        raise Problem(400, str(invalid), field=invalid.field) from None
    return await _created(request, submitted)


def _submit_json(
    engine: Engine, settings: Settings, body: bytes, submitted_by: str, request: web.Request
) -> Submitted:
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):
        raise Problem(400, "the body is not valid JSON") from None
    if not isinstance(fields, dict):
        raise Problem(400, "the body must be a JSON object with `items`")
    if "items" not in fields:
        raise InvalidField("items", "is required")
    return submit_json(
        engine, settings, fields, submitted_by=submitted_by, dispatch=_dispatch(request)
    )


def _submit_csv(request: web.Request, body: bytes) -> Submitted:
    settings = request.app[SETTINGS]
    fields: dict[str, Any] = dict(request.query)
    if "options" in fields:
        try:
            fields["options"] = json.loads(fields["options"])
        except ValueError:
            raise InvalidField("options", "must be a JSON object") from None
    job = job_request(
        fields,
        submitted_by=request[SUBMITTER],
        callbacks_enabled=bool(settings.webhook_secret.get_secret_value()),
    )
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(400, "the CSV body is not UTF-8") from None
    return submit_csv(
        _engine(request),
        io.StringIO(text, newline=""),
        job,
        max_bid=settings.max_bid,
        dispatch=_dispatch(request),
    )


@routes.get("/v1/jobs")
async def get_jobs(request: web.Request) -> web.Response:
    query = request.query
    try:
        page = await _blocking(
            list_jobs,
            _engine(request),
            status=query.get("status"),
            submitted_by=query.get("submitted_by"),
            cursor=query.get("cursor"),
            limit=_int(query, "limit") or 50,
        )
    except InvalidQuery as invalid:
        raise Problem(400, str(invalid)) from None
    rate = _rate(request)
    return _json(
        {"jobs": [job_summary(v, rate) for v in page.items], "next_cursor": page.next_cursor}
    )


@routes.get("/v1/jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    job_id = _job_id(request)
    return _json(await _blocking(_document, _engine(request), job_id, _rate(request)))


def _item_filters(query: Mapping[str, str]) -> dict[str, Any]:
    sku = query.get("sku_id")
    if sku is not None and not 0 < len(sku) <= 500:
        raise Problem(400, "sku_id: must have 1 to 500 characters")
    return {
        "status": query.get("status"),
        "error_kind": query.get("error_kind"),
        "line_item_id": _int(query, "line_item_id"),
        "sku_id": sku,
    }


def _wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format")
    if fmt is not None and fmt not in ("json", "csv"):
        raise Problem(400, "format: must be json or csv")
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("Accept", "")
    return CSV_MEDIA_TYPE in accept and "application/json" not in accept


@routes.get("/v1/jobs/{job_id}/items")
async def get_items(request: web.Request) -> web.StreamResponse:
    """JSON pages, or the whole filtered list streamed as CSV (the export that can be fixed and
    submitted again as it is)."""
    job_id = _job_id(request)
    filters = _item_filters(request.query)
    engine = _engine(request)
    try:
        if _wants_csv(request):
            return await stream_text(
                request,
                lambda out: export_items_csv(engine, job_id, out, **filters),
                content_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="job-{job_id}-items.csv"'},
            )
        page = await _blocking(
            list_items,
            engine,
            job_id,
            cursor=request.query.get("cursor"),
            limit=_int(request.query, "limit") or 100,
            **filters,
        )
    except JobNotFound:
        raise Problem(404, f"no job {job_id}") from None
    except InvalidQuery as invalid:
        raise Problem(400, str(invalid)) from None
    return _json({"items": page.items, "next_cursor": page.next_cursor})


async def _body_fields(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """An optional JSON object body with only these fields."""
    body = await request.read()
    if not body.strip():
        return {}
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):
        raise Problem(400, "the body is not valid JSON") from None
    if not isinstance(fields, dict):
        raise Problem(400, "the body must be a JSON object")
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise Problem(400, f"{unknown[0]}: is not a field here", field=unknown[0])
    return fields


def _derived_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The idempotency key and options of a retry or revert, checked as a new job's are."""
    request = job_request(
        {k: fields[k] for k in ("idempotency_key", "options") if k in fields},
        submitted_by="",
        callbacks_enabled=False,
    )
    return {"idempotency_key": request.idempotency_key, "options": request.options}


async def _derived(request: web.Request, make: Callable[[], Derived]) -> web.Response:
    try:
        derived = await _blocking(make)
    except JobNotFound:
        raise Problem(404, f"no job {request.match_info['job_id']}") from None
    except (NothingToDo, InvalidQuery) as refused:
        raise Problem(409 if isinstance(refused, NothingToDo) else 400, str(refused)) from None
    except SubmissionRejected as rejected:
        problem = rejected_rows(rejected.errors, rejected.total_errors)
        raise Problem(422, problem.detail, **problem.extra) from None
    document = await _blocking(_document, _engine(request), derived.job_id, _rate(request))
    return _json(
        {**document, "skipped": derived.skipped},
        status=201 if derived.created else 200,
        headers={"Location": f"/v1/jobs/{derived.job_id}"},
    )


@routes.post("/v1/jobs/{job_id}/retry")
async def retry(request: web.Request) -> web.Response:
    """A child job of the failed SKUs (of the given error kinds only, when some are given)."""
    job_id = _job_id(request)
    fields = await _body_fields(request, ("error_kinds", "idempotency_key", "options"))
    kinds = fields.get("error_kinds")
    if kinds is not None and (
        not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds)
    ):
        raise Problem(400, "error_kinds: must be a non-empty list of error kinds")
    try:
        derived = _derived_fields(fields)
    except InvalidField as invalid:
        raise Problem(400, str(invalid), field=invalid.field) from None
    return await _derived(
        request,
        lambda: retry_failed(
            _engine(request),
            job_id,
            error_kinds=kinds,
            submitted_by=request[SUBMITTER],
            dispatch=_dispatch(request),
            options=derived["options"] or None,
            idempotency_key=derived["idempotency_key"],
        ),
    )


@routes.post("/v1/jobs/{job_id}/revert")
async def revert(request: web.Request) -> web.Response:
    """A child job restoring the recorded before-values of the SKUs the job changed."""
    job_id = _job_id(request)
    fields = await _body_fields(request, ("idempotency_key",))
    try:
        key = _derived_fields(fields)["idempotency_key"]
    except InvalidField as invalid:
        raise Problem(400, str(invalid), field=invalid.field) from None
    return await _derived(
        request,
        lambda: revert_job(
            _engine(request),
            job_id,
            submitted_by=request[SUBMITTER],
            dispatch=_dispatch(request),
            idempotency_key=key,
        ),
    )


@routes.post("/v1/jobs/{job_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    """Chunks not started never run; running ones stop at their next call. Answers the job."""
    job_id = _job_id(request)
    engine = _engine(request)
    status = await _blocking(cancel_job, engine, job_id, _dispatch(request))
    if status is None:
        raise Problem(404, f"no job {job_id}")
    return _json(await _blocking(_document, engine, job_id, _rate(request)))
