"""The handlers: parse the request, call one operation of `Jobs` in a thread, answer its document.

Database work is blocking (SQLAlchemy, COPY), so every operation runs in a worker thread and the
event loop stays free for other requests and for streaming exports. Errors are raised as
`worker.jobs.errors` and become problem documents in `worker.api.app`.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from pydantic import BaseModel

from worker.api.csvstream import stream_text
from worker.api.problems import Problem, rejected_rows
from worker.domain.access import Caller
from worker.domain.validation import INT64_MAX
from worker.jobs.documents import (
    ApplyRequest,
    DerivedJob,
    Health,
    ItemQuery,
    JobFields,
    JobListQuery,
    RetryRequest,
    RevertRequest,
    Submitted,
    parse,
)
from worker.jobs.errors import InvalidField, InvalidQuery, SubmissionRejected
from worker.jobs.service import Jobs
from worker.metrics import render

JOBS = web.AppKey("jobs", Jobs)
CALLER = web.RequestKey("caller", Caller)  # set by the auth middleware
METRICS = web.AppKey("metrics", CollectorRegistry)
OPENAPI = web.AppKey("openapi", bytes)

CSV_MEDIA_TYPE = "text/csv"
T = TypeVar("T")

routes = web.RouteTableDef()


def _json(
    document: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=document.model_dump_json(),
        content_type="application/json",
        headers=headers,
    )


def _jobs(request: web.Request) -> Jobs:
    """The operations, asked by the request's key."""
    caller = request.get(CALLER)
    jobs = request.app[JOBS]
    return jobs if caller is None else jobs.acting_as(caller)


async def _blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


def _job_id(request: web.Request) -> int:
    raw = request.match_info["job_id"]
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= INT64_MAX:
        raise Problem(404, f"no job {raw[:40]!r}")
    return int(raw)


def _int(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= INT64_MAX:
        raise InvalidQuery(f"{name}: must be a positive integer")
    return int(value)


async def _json_body(request: web.Request, *, required: bool) -> Any:
    body = await request.read()
    if not body.strip() and not required:
        return {}
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise Problem(400, "the body is not valid JSON") from None


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    if not await _blocking(_jobs(request).database_answers):
        raise Problem(503, "the database does not answer")
    return _json(Health(status="ok"))


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: jobs and chunks by status, the broker's queue depth."""
    body = await _blocking(render, request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


async def _created(request: web.Request, submitted: Submitted) -> web.Response:
    document = await _blocking(_jobs(request).get, submitted.id)
    return _json(
        document,
        status=201 if submitted.created else 200,
        headers={"Location": f"/v1/jobs/{submitted.id}"},
    )


@routes.post("/v1/jobs")
async def create_job(request: web.Request) -> web.Response:
    """A JSON body, or a CSV body with the job's fields as query parameters."""
    jobs = _jobs(request)
    if request.content_type == CSV_MEDIA_TYPE:
        fields = _csv_fields(request.query)
        body = io.BytesIO(await request.read())
        submitted = await _blocking(jobs.submit_csv, body, fields)
    elif request.content_type == "application/json":
        body = await _json_body(request, required=True)
        if not isinstance(body, dict):
            raise Problem(400, "the body must be a JSON object with `items`")
        submitted = await _blocking(jobs.submit_json, body)
    else:
        raise Problem(415, "send application/json or text/csv")
    return await _created(request, submitted)


def _csv_fields(query: Mapping[str, str]) -> JobFields:
    fields: dict[str, Any] = dict(query)
    if "options" in fields:
        try:
            fields["options"] = json.loads(fields["options"])
        except ValueError:
            raise InvalidField("options", "must be a JSON object") from None
    return parse(JobFields, fields)


@routes.get("/v1/jobs")
async def get_jobs(request: web.Request) -> web.Response:
    query = request.query
    page = await _blocking(
        _jobs(request).list_jobs,
        status=query.get("status"),
        submitted_by=query.get("submitted_by"),
        cursor=query.get("cursor"),
        limit=_int(query, "limit") or 50,
        **parse(
            JobListQuery, {k: query[k] for k in JobListQuery.model_fields if k in query}
        ).model_dump(exclude_none=True),
    )
    return _json(page)


@routes.get("/v1/jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    return _json(await _blocking(_jobs(request).get, _job_id(request)))


def _item_query(query: Mapping[str, str]) -> ItemQuery:
    fields: dict[str, object] = {k: query[k] for k in ItemQuery.model_fields if k in query}
    if "line_item_id" in fields:
        fields["line_item_id"] = _int(query, "line_item_id")
    return parse(ItemQuery, fields)


def _wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format")
    if fmt is not None and fmt not in ("json", "csv"):
        raise InvalidQuery("format: must be json or csv")
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("Accept", "")
    return CSV_MEDIA_TYPE in accept and "application/json" not in accept


@routes.get("/v1/jobs/{job_id}/items")
async def get_items(request: web.Request) -> web.StreamResponse:
    """JSON pages, or the whole filtered list streamed as CSV (the export that can be fixed and
    submitted again as it is)."""
    job_id = _job_id(request)
    query = _item_query(request.query)
    jobs = _jobs(request)
    if _wants_csv(request):
        return await stream_text(
            request,
            lambda out: jobs.export_csv(job_id, out, query),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="job-{job_id}-items.csv"'},
        )
    page = await _blocking(
        jobs.items,
        job_id,
        query,
        cursor=request.query.get("cursor"),
        limit=_int(request.query, "limit") or 100,
    )
    return _json(page)


async def _derived(request: web.Request, make: Callable[[], DerivedJob]) -> web.Response:
    """A derived job's rows come from our own records: if they fail today's rules (a lower
    PROMOBULK_MAX_BID), that is 422, not the caller's bad input."""
    try:
        derived = await _blocking(make)
    except SubmissionRejected as rejected:
        raise Problem(422, **rejected_rows(rejected)) from None
    return _json(
        derived,
        status=201 if derived.created else 200,
        headers={"Location": f"/v1/jobs/{derived.id}"},
    )


@routes.post("/v1/jobs/{job_id}/retry")
async def retry(request: web.Request) -> web.Response:
    """A child job of the failed SKUs (of the given error kinds only, when some are given)."""
    job_id = _job_id(request)
    body = parse(RetryRequest, await _json_body(request, required=False))
    jobs = _jobs(request)
    return await _derived(request, lambda: jobs.retry(job_id, body))


@routes.post("/v1/jobs/{job_id}/revert")
async def revert(request: web.Request) -> web.Response:
    """A child job restoring the recorded before-values of the SKUs the job changed."""
    job_id = _job_id(request)
    body = parse(RevertRequest, await _json_body(request, required=False))
    jobs = _jobs(request)
    return await _derived(request, lambda: jobs.revert(job_id, body))


@routes.post("/v1/jobs/{job_id}/apply")
async def apply(request: web.Request) -> web.Response:
    """A child job making for real the changes a finished dry run planned."""
    job_id = _job_id(request)
    body = parse(ApplyRequest, await _json_body(request, required=False))
    jobs = _jobs(request)
    return await _derived(request, lambda: jobs.apply(job_id, body))


@routes.get("/v1/line-items/{line_item_id}/skus/{sku_id}/history")
async def history(request: web.Request) -> web.Response:
    """Every change made to a (line item, SKU) across jobs, newest first."""
    raw = request.match_info["line_item_id"]
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= INT64_MAX:
        raise InvalidQuery("line_item_id: must be a positive 64-bit integer")
    page = await _blocking(
        _jobs(request).history,
        int(raw),
        request.match_info["sku_id"],
        cursor=request.query.get("cursor"),
        limit=_int(request.query, "limit") or 50,
    )
    return _json(page)


@routes.post("/v1/jobs/{job_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    """Chunks not started never run; running ones stop at their next call. Answers the job."""
    return _json(await _blocking(_jobs(request).cancel, _job_id(request)))
