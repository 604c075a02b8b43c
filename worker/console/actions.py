"""The pages that act: retry, revert, cancel and run a dry run for real (each a confirmation
that says what will happen and to how many SKUs, then the change), a new job from a file or
pasted rows, and the CSV download."""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from typing import IO, Any

from aiohttp import web
from multidict import MultiMapping

from worker.api.csvstream import stream_text
from worker.console.context import blocking, jobs_for, render, see_other
from worker.console.forms import item_query, job_fields, pasted_csv, retry_request, text
from worker.console.pages import job_id_of
from worker.domain.derive import REASON_TEXT, NotRevertible
from worker.jobs.documents import (
    ApplyRequest,
    DerivedJob,
    JobFields,
    RevertRequest,
    Submitted,
)
from worker.jobs.errors import Refused, SubmissionRejected
from worker.jobs.service import Jobs

routes = web.RouteTableDef()
JOB = r"/jobs/{job_id:\d{1,19}}"


def _to_job(job_id: int) -> web.StreamResponse:
    return see_other(f"/jobs/{job_id}")


def _confirm(request: web.Request, action: str, **context: Any) -> web.Response:
    """A confirmation page; its form carries a fresh idempotency key, so a double click or a
    resent form makes one job, not two."""
    return render(
        request,
        f"confirm_{action}.html",
        idempotency_key=f"console-{action}-{secrets.token_urlsafe(12)}",
        **context,
    )


async def _derived_of(
    request: web.Request, make: Callable[[Jobs, int], DerivedJob]
) -> web.StreamResponse:
    """Make the child job of the URL's job as the signed-in key, and open it."""
    jobs, job_id = jobs_for(request), job_id_of(request)
    try:
        child = await blocking(make, jobs, job_id)
    except SubmissionRejected as rejected:
        return render(request, "rejected.html", status=422, rejected=rejected, job_id=None)
    return _to_job(child.id)


# --- retry --------------------------------------------------------------------------------------


@routes.get(JOB + "/retry", name="console.retry")
async def retry_page(request: web.Request) -> web.Response:
    job = await blocking(jobs_for(request).get, job_id_of(request))
    chosen = set(request.query.getall("error_kind", []))
    groups: dict[str, int] = {}
    for group in job.failures:
        kind = group.error_kind or "api_error"
        groups[kind] = groups.get(kind, 0) + group.count
    selected = sum(n for kind, n in groups.items() if not chosen or kind in chosen)
    return _confirm(request, "retry", job=job, groups=groups, chosen=chosen, selected=selected)


@routes.post(JOB + "/retry")
async def retry(request: web.Request) -> web.StreamResponse:
    body = retry_request(await request.post())
    return await _derived_of(request, lambda jobs, job_id: jobs.retry(job_id, body))


# --- revert -------------------------------------------------------------------------------------


@routes.get(JOB + "/revert", name="console.revert")
async def revert_page(request: web.Request) -> web.Response:
    jobs = jobs_for(request)
    job_id = job_id_of(request)
    job = await blocking(jobs.get, job_id)
    preview = await blocking(jobs.revert_preview, job_id)
    reasons = {r: REASON_TEXT[NotRevertible(r)] for r in preview.skipped}
    return _confirm(request, "revert", job=job, preview=preview, reasons=reasons)


@routes.post(JOB + "/revert")
async def revert(request: web.Request) -> web.StreamResponse:
    key = text(await request.post(), "idempotency_key")
    return await _derived_of(
        request, lambda jobs, job_id: jobs.revert(job_id, RevertRequest(idempotency_key=key))
    )


# --- run a dry run for real -----------------------------------------------------------------


@routes.get(JOB + "/apply", name="console.apply")
async def apply_page(request: web.Request) -> web.Response:
    job = await blocking(jobs_for(request).get, job_id_of(request))
    return _confirm(request, "apply", job=job)


@routes.post(JOB + "/apply")
async def apply(request: web.Request) -> web.StreamResponse:
    key = text(await request.post(), "idempotency_key")
    return await _derived_of(
        request, lambda jobs, job_id: jobs.apply(job_id, ApplyRequest(idempotency_key=key))
    )


# --- cancel -------------------------------------------------------------------------------------


@routes.get(JOB + "/cancel", name="console.cancel")
async def cancel_page(request: web.Request) -> web.Response:
    job = await blocking(jobs_for(request).summary, job_id_of(request))
    return _confirm(request, "cancel", job=job)


@routes.post(JOB + "/cancel")
async def cancel(request: web.Request) -> web.StreamResponse:
    job_id = job_id_of(request)
    await blocking(jobs_for(request).cancel, job_id)
    return _to_job(job_id)


# --- the CSV download ---------------------------------------------------------------------------


@routes.get(JOB + "/items.csv", name="console.export")
async def export(request: web.Request) -> web.StreamResponse:
    """The same export as `promobulk items` and the HTTP API: streamed, any size."""
    job_id = job_id_of(request)
    query = item_query(request.query)
    jobs = jobs_for(request)
    await blocking(jobs.summary, job_id)  # no such job: a 404 page before any byte
    return await stream_text(
        request,
        lambda out: jobs.export_csv(job_id, out, query),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="job-{job_id}-items.csv"'},
    )


# --- a new job ------------------------------------------------------------------------------


@routes.get("/jobs/new", name="console.new_job")
async def new_job_page(request: web.Request) -> web.Response:
    return render(request, "new_job.html", form={"dry_run": "on"}, rejected=None, error=None)


def _submit_source(jobs: Jobs, source: IO[bytes] | str, fields: JobFields) -> Submitted:
    if isinstance(source, str):
        return jobs.submit_csv(io.StringIO(source, newline=""), fields)
    with io.TextIOWrapper(source, encoding="utf-8-sig", newline="") as stream:
        try:
            return jobs.submit_csv(stream, fields)
        except UnicodeDecodeError:
            raise Refused("the file is not UTF-8 text: save it as CSV (UTF-8)") from None


def _source(form: MultiMapping[Any]) -> IO[bytes] | str:
    upload = form.get("file")
    if isinstance(upload, web.FileField) and upload.filename:
        return upload.file
    pasted = form.get("rows")
    if isinstance(pasted, str) and pasted.strip():
        return pasted_csv(pasted)
    raise Refused("choose a CSV file or paste rows")


@routes.post("/jobs/new")
async def new_job(request: web.Request) -> web.StreamResponse:
    """Stored whole or not at all; refused rows are shown by number, with the form as it was."""
    form = await request.post()
    kept = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    try:
        fields = job_fields(form)
        submitted = await blocking(_submit_source, jobs_for(request), _source(form), fields)
    except SubmissionRejected as rejected:
        return render(request, "new_job.html", status=400, form=kept, rejected=rejected, error=None)
    except Refused as refused:
        return render(
            request, "new_job.html", status=400, form=kept, rejected=None, error=str(refused)
        )
    return _to_job(submitted.id)
