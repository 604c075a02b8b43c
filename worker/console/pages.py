"""The pages that show: jobs, a job (with its live part and its SKUs), a SKU's history, the
health strip. Each reads through `Jobs` as the signed-in key, in one worker thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from worker.console.context import CALLER, blocking, is_htmx, jobs_for, render
from worker.console.forms import (
    ITEM_PAGE_SIZES,
    JobListFilters,
    item_query,
    job_list_filters,
    page_size,
    text,
)
from worker.domain.enums import ErrorKind, ItemStatus, JobStatus
from worker.domain.transitions import JOB_TERMINAL
from worker.domain.validation import INT64_MAX
from worker.jobs.documents import (
    HistoryPage,
    ItemPage,
    ItemQuery,
    JobDocument,
    JobPage,
    JobSummary,
)
from worker.jobs.errors import Refused
from worker.jobs.service import Jobs

routes = web.RouteTableDef()
JOB_LIST_SIZE = 50


def job_id_of(request: web.Request) -> int:
    raw = request.match_info["job_id"]
    if not 0 < int(raw) <= INT64_MAX:
        raise web.HTTPNotFound()
    return int(raw)


def ended(job: JobSummary) -> bool:
    return job.status in JOB_TERMINAL


def _query_string(values: dict[str, Any]) -> str:
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


# --- jobs -----------------------------------------------------------------------------------


def _list(jobs: Jobs, filters: JobListFilters) -> JobPage:
    return jobs.list_jobs(**filters.arguments, limit=JOB_LIST_SIZE)


@routes.get("/", name="console.jobs")
async def jobs_page(request: web.Request) -> web.Response:
    """Jobs, newest first, filtered; the rows poll themselves while the list can change."""
    error = None
    page = JobPage(jobs=[], next_cursor=None)
    filters = JobListFilters()
    try:
        filters = job_list_filters(request.query)
        page = await blocking(_list, jobs_for(request), filters)
    except Refused as refused:
        error = str(refused)
    kept = {k: v for k, v in request.query.items() if k != "cursor"}
    context: dict[str, Any] = {
        "page": page,
        "filters": filters,
        "error": error,
        "statuses": [s.value for s in JobStatus],
        "query": request.query_string,
        "first_page": _query_string(kept),
        "next_page": _query_string({**kept, "cursor": page.next_cursor}),
        # The first page watches for new jobs; any page watches its running ones.
        "live": filters.cursor is None or any(not ended(j) for j in page.jobs),
    }
    return render(request, "_job_rows.html" if is_htmx(request) else "jobs.html", **context)


# --- a job ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobView:
    job: JobDocument
    items: ItemPage
    children: JobPage
    query: ItemQuery
    error: str | None


def _job_view(
    jobs: Jobs, job_id: int, query: dict[str, str], cursor: str | None, limit: int
) -> JobView:
    job = jobs.get(job_id)
    children = jobs.list_jobs(parent_job_id=job_id, limit=20)
    try:
        items_query = item_query(query)
        items = jobs.items(job_id, items_query, cursor=cursor, limit=limit)
        error = None
    except Refused as refused:
        items_query, items, error = ItemQuery(), ItemPage(items=[], next_cursor=None), str(refused)
    return JobView(job, items, children, items_query, error)


def matching(job: JobDocument, query: ItemQuery) -> int | None:
    """How many SKUs a filter matches, when the job's own counts say so (no count over a
    million rows): by outcome, by error kind; None otherwise."""
    if query.line_item_id is not None or query.sku_id is not None:
        return None
    if query.error_kind is not None:
        if query.status not in (None, ItemStatus.FAILED):
            return 0
        return sum(g.count for g in job.failures if g.error_kind == query.error_kind.value)
    if query.status is not None:
        return job.counts.get(query.status.value, 0)
    return job.total


@routes.get(r"/jobs/{job_id:\d{1,19}}", name="console.job")
async def job_page(request: web.Request) -> web.Response:
    job_id = job_id_of(request)
    limit = page_size(request.query)
    view = await blocking(
        _job_view,
        jobs_for(request),
        job_id,
        dict(request.query),
        text(request.query, "cursor"),
        limit,
    )
    filters = {k: request.query.get(k) for k in (*ItemQuery.model_fields, "limit")}
    return render(
        request,
        "job.html",
        view=view,
        job=view.job,
        caller=request[CALLER],
        matching=matching(view.job, view.query),
        statuses=[s.value for s in ItemStatus],
        error_kinds=[k.value for k in ErrorKind],
        page_sizes=ITEM_PAGE_SIZES,
        filters=filters,
        cursor=text(request.query, "cursor"),
        first_page=_query_string(filters),
        next_page=_query_string({**filters, "cursor": view.items.next_cursor}),
        export_query=_query_string({k: v for k, v in filters.items() if k != "limit"}),
    )


@routes.get(r"/jobs/{job_id:\d{1,19}}/live", name="console.job_live")
async def job_live(request: web.Request) -> web.Response:
    """The job's progress, counts, rate and times, polled every 2 s while it runs. When it has
    ended, the answer says so (`HX-Trigger: job-ended`) and the page fetches its final state."""
    job = await blocking(jobs_for(request).summary, job_id_of(request))
    response = render(request, "_job_live.html", job=job)
    if ended(job):
        response.headers["HX-Trigger"] = "job-ended"
    return response


# --- a SKU's history --------------------------------------------------------------------------


@routes.get("/history", name="console.history")
async def history_page(request: web.Request) -> web.Response:
    line_item = text(request.query, "line_item_id")
    sku = request.query.get("sku_id", "").strip()
    page: HistoryPage | None = None
    error = None
    if line_item is not None or sku:
        try:
            if line_item is None or not (line_item.isascii() and line_item.isdigit()):
                raise Refused("line item: must be a number")
            page = await blocking(
                jobs_for(request).history,
                int(line_item),
                sku,
                cursor=text(request.query, "cursor"),
            )
        except Refused as refused:
            error = str(refused)
    return render(
        request,
        "history.html",
        line_item_id=line_item or "",
        sku_id=sku,
        page=page,
        error=error,
        next_page=_query_string(
            {"line_item_id": line_item, "sku_id": sku, "cursor": page and page.next_cursor}
        ),
    )


# --- the health strip -------------------------------------------------------------------------


@routes.get("/health", name="console.health")
async def health_strip(request: web.Request) -> web.Response:
    return render(request, "_health.html")
