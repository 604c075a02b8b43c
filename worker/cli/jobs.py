"""The job commands: submit, dry-run, status, watch, list, items, cancel, retry, revert."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer

from worker.cli import render
from worker.cli.app import (
    EXIT_FOR_STATUS,
    AsJson,
    SubmittedBy,
    app,
    console,
    err_console,
    job_fields,
    jobs,
    print_json,
    reports,
)
from worker.cli.progress import follow, wait
from worker.domain.derive import reason_text
from worker.domain.enums import ErrorKind
from worker.jobs.documents import (
    DerivedJob,
    ItemDocument,
    ItemQuery,
    JobFields,
    RetryRequest,
    RevertRequest,
    Submitted,
    parse,
)
from worker.jobs.service import Jobs

CsvFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file")]
Follow = Annotated[bool, typer.Option("--wait", help="Follow the job with a live progress display")]


def _submit_file(service: Jobs, file: Path, fields: JobFields) -> Submitted:
    with file.open("rb") as stream:
        return service.submit_csv(stream, fields)


@app.command()
@reports
@job_fields(exclude=("dry_run",))
def submit(
    file: CsvFile,
    fields: JobFields,
    follow_it: Follow = False,
    submitted_by: Annotated[str, typer.Option(help="Recorded on the job")] = "cli",
    as_json: AsJson = False,
) -> None:
    """Store a job from a CSV (line_item_id,sku_id,action,bid_override[,account_id]) and run it."""
    service = jobs(submitted_by)
    result = _submit_file(service, file, fields)
    if as_json and not follow_it:
        print_json(result)
    elif not as_json:
        note = "" if result.created else " (existing job for this idempotency key)"
        console.print(
            f"job {result.id}: {result.total} SKU changes in {result.chunks} chunks{note}"
        )
    if follow_it:
        raise typer.Exit(follow(service, result.id, as_json=as_json))


@app.command("dry-run")
@reports
@job_fields(exclude=("dry_run", "idempotency_key", "callback_url", "not_before"))
def dry_run(
    file: CsvFile,
    fields: JobFields,
    show: Annotated[int, typer.Option(help="SKUs to describe (all: use `items`)")] = 20,
    submitted_by: SubmittedBy = "cli",
    as_json: AsJson = False,
) -> None:
    """What a CSV would do, SKU by SKU, from a fresh read of each line item, with no write."""
    service = jobs(submitted_by)
    result = _submit_file(service, file, fields.model_copy(update={"dry_run": True}))
    if not as_json:
        console.print(f"dry run {result.id}: {result.total} SKUs, reading their line items")
    if as_json:
        code = EXIT_FOR_STATUS[wait(service, result.id).status]
    else:
        code = follow(service, result.id)
    # What would change first, then what would fail: the unchanged are the least news.
    shown: list[ItemDocument] = []
    for outcome in ("succeeded", "failed", "unchanged"):
        if len(shown) < show:
            page = service.items(
                result.id, ItemQuery.model_validate({"status": outcome}), limit=show
            )
            shown += page.items[: show - len(shown)]
    if as_json:
        document = service.summary(result.id).model_dump(mode="json")
        print_json({**document, "items": [i.model_dump(mode="json") for i in shown]})
    else:
        console.print(render.planned(shown, result.total))
        console.print(f"every SKU: promobulk items {result.id} --format csv")
    raise typer.Exit(code)


@app.command()
@reports
def status(job_id: int, as_json: AsJson = False) -> None:
    """A job's status, its SKU counts by outcome and why SKUs failed."""
    document = jobs().get(job_id)
    if as_json:
        print_json(document)
        return
    console.print(render.outcomes(document))
    if document.failures:
        console.print(render.failures(document.failures))


@app.command()
@reports
def watch(job_id: int, as_json: AsJson = False) -> None:
    """Follow a job live (progress, rate, ETA, outcomes) until it ends; --json prints a line per
    change."""
    raise typer.Exit(follow(jobs(), job_id, as_json=as_json, stream=True))


@app.command()
@reports
def cancel(job_id: int, as_json: AsJson = False) -> None:
    """Cancel a job: chunks not started never run, running ones stop at their next call."""
    document = jobs().cancel(job_id)
    if as_json:
        print_json({"id": job_id, "status": document.status.value})
    else:
        console.print(f"job {job_id}: {document.status.value}")


@app.command("list")
@reports
def list_command(
    status: Annotated[str | None, typer.Option(help="Only jobs in this status")] = None,
    submitted_by: Annotated[str | None, typer.Option(help="Only jobs of this submitter")] = None,
    limit: Annotated[int, typer.Option(help="Jobs per page")] = 20,
    cursor: Annotated[str | None, typer.Option(help="The next_cursor of the page before")] = None,
    as_json: AsJson = False,
) -> None:
    """Jobs, newest first."""
    page = jobs().list_jobs(status=status, submitted_by=submitted_by, cursor=cursor, limit=limit)
    if as_json:
        print_json(page)
        return
    console.print(render.job_list(page.jobs))
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")


class ItemFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


@contextmanager
def _stdout() -> Iterator[TextIO]:
    yield sys.stdout
    sys.stdout.flush()


@app.command()
@reports
def items(
    job_id: int,
    status: Annotated[str | None, typer.Option(help="Only this outcome (e.g. failed)")] = None,
    error_kind: Annotated[str | None, typer.Option(help="Only this error kind")] = None,
    line_item: Annotated[int | None, typer.Option(help="Only this line item")] = None,
    sku: Annotated[str | None, typer.Option(help="Only this SKU")] = None,
    fmt: Annotated[ItemFormat, typer.Option("--format", help="csv or json")] = ItemFormat.CSV,
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json")] = False,
) -> None:
    """A job's SKUs with their outcomes, streamed. The CSV can be fixed and submitted again."""
    service = jobs()
    given = {"status": status, "error_kind": error_kind, "line_item_id": line_item, "sku_id": sku}
    query = parse(ItemQuery, {k: v for k, v in given.items() if v is not None})
    service.summary(job_id)  # no such job: exit 5 before anything is written
    with output.open("w", newline="", encoding="utf-8") if output else _stdout() as out:
        if as_json or fmt is ItemFormat.JSON:
            out.write("[")
            for n, item in enumerate(service.iter_items(job_id, query)):
                out.write(("," if n else "") + "\n" + item.model_dump_json())
            out.write("\n]\n")
        else:
            written = service.export_csv(job_id, out, query)
            if output:
                err_console.print(f"{written} rows written to {output}")


def _report_derived(
    service: Jobs, result: DerivedJob, parent: int, *, follow_it: bool, as_json: bool, what: str
) -> None:
    """A retry or revert job, reported the way `submit` reports a job."""
    if as_json and not follow_it:
        print_json(
            {
                "id": result.id,
                "parent_job_id": parent,
                "total": result.total,
                "created": result.created,
                "skipped": result.skipped,
            }
        )
    elif not as_json:
        console.print(f"job {result.id}: {what} of job {parent}, {result.total} SKU changes")
        for reason, n in result.skipped.items():
            console.print(f"  not reverted: {n} SKU(s): {reason_text(reason)}")
    if follow_it:
        raise typer.Exit(follow(service, result.id, as_json=as_json))


@app.command()
@reports
@job_fields(options_only=True)
def retry(
    job_id: int,
    fields: JobFields,
    error_kind: Annotated[
        list[ErrorKind] | None, typer.Option(help="Only SKUs that failed this way (repeatable)")
    ] = None,
    submitted_by: SubmittedBy = "cli",
    follow_it: Follow = False,
    as_json: AsJson = False,
) -> None:
    """A new job, linked to JOB, of exactly its failed SKUs with the same actions and bids;
    the options given here override the parent's for the new job."""
    service = jobs(submitted_by)
    request = RetryRequest(
        error_kinds=error_kind or None,
        options=fields.options if fields.options.model_fields_set else None,
    )
    result = service.retry(job_id, request)
    _report_derived(service, result, job_id, follow_it=follow_it, as_json=as_json, what="retry")


@app.command()
@reports
def revert(
    job_id: int,
    submitted_by: SubmittedBy = "cli",
    follow_it: Follow = False,
    as_json: AsJson = False,
) -> None:
    """A new job, linked to JOB, that restores the before-state of every SKU JOB changed."""
    service = jobs(submitted_by)
    result = service.revert(job_id, RevertRequest())
    _report_derived(service, result, job_id, follow_it=follow_it, as_json=as_json, what="revert")
