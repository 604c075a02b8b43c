"""The `promobulk` command. Thin: parse, call one function, print.

Exit codes: 0 done (job succeeded); 1 unexpected error; 2 bad input (job rejected, nothing
stored; a bad filter or cursor); 3 the job finished with failed SKUs; 4 the job failed or was
cancelled; 5 not found; 6 nothing to do (no failed SKU to retry, nothing to revert, the job has
not finished); 7 `doctor` found a problem. `--json` on every command prints JSON for scripts.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from worker.config import get_settings
from worker.domain.enums import JobStatus, Priority

app = typer.Typer(
    help="Bulk changes to Criteo Retail Media promoted products.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
err_console = Console(stderr=True)

EXIT_FOR_STATUS = {
    JobStatus.SUCCEEDED: 0,
    JobStatus.COMPLETED_WITH_FAILURES: 3,
    JobStatus.FAILED: 4,
    JobStatus.CANCELLED: 4,
}
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}
EXIT_NOT_FOUND, EXIT_NOTHING_TO_DO, EXIT_DOCTOR = 5, 6, 7
DRY_RUN_LABELS = {"succeeded": "would change", "failed": "would fail"}

MaxBid = Annotated[str | None, typer.Option(help="Guardrail: no bid above this")]
MaxChangeRatio = Annotated[
    str | None,
    typer.Option(help="Guardrail: a new bid at most this many times the current, either way"),
]
Guardrails = Annotated[
    bool | None, typer.Option("--guardrails/--no-guardrails", help="Turn the guardrails on/off")
]


def _guardrail_options(
    max_bid: str | None, max_change_ratio: str | None, guardrails: bool | None
) -> dict[str, Any]:
    """Only what was given: a retry keeps its parent's settings for the rest."""
    given = {"max_bid": max_bid, "max_change_ratio": max_change_ratio, "guardrails": guardrails}
    return {k: v for k, v in given.items() if v is not None}


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the migrations (idempotent)."""
    from worker.db.migrate import upgrade

    upgrade(revision=revision)
    console.print(f"database at {revision}")


@db_app.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree."""
    from worker.db.migrate import check

    check()
    console.print("models and migrations agree")


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file")],
    wait: Annotated[bool, typer.Option(help="Follow the job with a live progress bar")] = False,
    priority: Priority = Priority.NORMAL,
    idempotency_key: Annotated[str | None, typer.Option(help="Same key, same job")] = None,
    submitted_by: Annotated[str, typer.Option(help="Recorded on the job")] = "cli",
    skip_read: Annotated[
        bool, typer.Option(help="Skip reading line items first (faster; before-values unknown)")
    ] = False,
    max_bid: MaxBid = None,
    max_change_ratio: MaxChangeRatio = None,
    guardrails: Guardrails = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Store a job from a CSV (line_item_id,sku_id,action,bid_override[,account_id]) and run it."""
    from worker.submission import JobRequest, SubmissionRejected

    options = _guardrail_options(max_bid, max_change_ratio, guardrails)
    request = JobRequest(
        submitted_by=submitted_by,
        idempotency_key=idempotency_key,
        priority=priority,
        options={**options, "skip_read": True} if skip_read else options,
    )
    try:
        result = submit_job_file(file, request)
    except SubmissionRejected as rejected:
        _refuse(rejected, as_json=as_json)
    if as_json and not wait:
        print(json.dumps({"id": result.job_id, "total": result.total, "created": result.created}))
    elif not as_json:
        note = "" if result.created else " (existing job for this idempotency key)"
        console.print(
            f"job {result.job_id}: {result.total} SKU changes in {result.chunks} chunks{note}"
        )
    if wait:
        raise typer.Exit(_follow(result.job_id, as_json=as_json))


def submit_job_file(file: Path, request: Any = None) -> Any:
    """Submit a CSV file through the one submission function, dispatching on Celery."""
    from worker.db.engine import get_engine
    from worker.submission import JobRequest, submit_csv
    from worker.tasks import dispatch_chunks

    with file.open(newline="", encoding="utf-8-sig") as stream:
        return submit_csv(
            get_engine(),
            stream,
            request or JobRequest(),
            max_bid=get_settings().max_bid,
            dispatch=dispatch_chunks,
        )


def _refuse(rejected: Any, *, as_json: bool) -> NoReturn:
    """A refused job: every bad row (or, for scripts, as JSON), and exit code 2."""
    if as_json:
        errors = [{"row": e.row, "field": e.field, "reason": e.reason} for e in rejected.errors]
        print(
            json.dumps({"rejected": True, "total_errors": rejected.total_errors, "errors": errors})
        )
    else:
        err_console.print(f"[red]rejected, nothing stored:[/] {rejected.total_errors} problem(s)")
        for error in rejected.errors:
            err_console.print(f"  {error}")
        if rejected.total_errors > len(rejected.errors):
            err_console.print(f"  ... and {rejected.total_errors - len(rejected.errors)} more")
    raise typer.Exit(2)


def _view(job_id: int) -> Any:
    from sqlalchemy.orm import Session

    from worker.db.engine import get_engine
    from worker.db.repository import Repository

    with Session(get_engine()) as session:
        return Repository(session).job_view(job_id)


def _failures(job_id: int) -> list[Any]:
    from sqlalchemy.orm import Session

    from worker.db.engine import get_engine
    from worker.db.repository import Repository

    with Session(get_engine()) as session:
        return Repository(session).failure_summary(job_id)


def _counts_text(view: Any) -> str:
    labels = DRY_RUN_LABELS if view.dry_run else {}
    return "  ".join(f"{labels.get(k, k)} {n}" for k, n in sorted(view.counts.items()))


def _follow(job_id: int, *, as_json: bool, poll: float = 0.5, stream: bool = False) -> int:
    """Show progress until the job ends; return the exit code its status means.

    The rate is measured over the last 30 s, so watching a job already half done, or one held
    back by the rate limit, shows its current pace and an honest ETA. With `as_json`, print the
    final state (`stream`: one JSON line per change, for `watch --json`).
    """
    view = _view(job_id)
    if view is None:
        err_console.print(f"no job {job_id}")
        return EXIT_NOT_FOUND
    if as_json:
        last = None
        while True:
            state = view.as_dict()
            if stream and state != last:
                print(json.dumps(state), flush=True)
                last = state
            if view.status in EXIT_FOR_STATUS:
                break
            time.sleep(poll)
            view = _view(job_id)
        if not stream:
            print(json.dumps(view.as_dict()))
        return EXIT_FOR_STATUS[view.status]
    columns = [
        TextColumn("[bold]job {task.fields[job]}[/] {task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.1f} SKU/s"),
        TextColumn("ETA {task.fields[eta]}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[counts]}"),
    ]
    samples: deque[tuple[float, int]] = deque()
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(
            "job", total=view.total, job=job_id, status="", rate=0.0, eta="-", counts=""
        )
        while True:
            now = time.monotonic()
            samples.append((now, view.done))
            while samples[0][0] < now - 30:
                samples.popleft()
            span = now - samples[0][0]
            rate = (view.done - samples[0][1]) / span if span > 0 else 0.0
            eta = f"{(view.total - view.done) / rate:.0f}s" if rate > 0 else "-"
            progress.update(
                task,
                completed=view.done,
                status=view.status.value,
                rate=rate,
                eta=eta,
                counts=_counts_text(view),
            )
            if view.status in EXIT_FOR_STATUS:
                break
            time.sleep(poll)
            view = _view(job_id)
    _print_summary(view)
    return EXIT_FOR_STATUS[view.status]


def _print_summary(view: Any) -> None:
    kind = "dry run" if view.dry_run else "job"
    table = Table(title=f"{kind} {view.id}: {view.status.value}", min_width=48)
    table.add_column("outcome")
    table.add_column("SKUs", justify="right")
    labels = DRY_RUN_LABELS if view.dry_run else {}
    for status, n in sorted(view.counts.items()):
        table.add_row(labels.get(status, status), str(n))
    table.add_row("[bold]total[/]", f"[bold]{view.total}[/]")
    console.print(table)
    failures = _failures(view.id)
    if failures:
        why = Table(title="why SKUs failed", min_width=48)
        why.add_column("error kind")
        why.add_column("code", overflow="fold")
        why.add_column("SKUs", justify="right")
        why.add_column("example", overflow="fold", max_width=70)
        for group in failures:
            why.add_row(group.error_kind, group.error_code or "", str(group.count), group.example)
        console.print(why)


@app.command()
def status(
    job_id: int,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """A job's status and its SKU counts by outcome."""
    view = _view(job_id)
    if view is None:
        err_console.print(f"no job {job_id}")
        raise typer.Exit(5)
    if as_json:
        failures = [
            {"error_kind": g.error_kind, "error_code": g.error_code, "count": g.count}
            for g in _failures(job_id)
        ]
        print(json.dumps({**view.as_dict(), "failures": failures}))
    else:
        _print_summary(view)


@app.command()
def cancel(
    job_id: int,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Cancel a job: chunks not started never run, running ones stop at their next call."""
    from worker.db.engine import get_engine
    from worker.service import cancel_job
    from worker.tasks import dispatch_chunks

    status = cancel_job(get_engine(), job_id, dispatch_chunks)
    if status is None:
        err_console.print(f"no job {job_id}")
        raise typer.Exit(5)
    if as_json:
        print(json.dumps({"id": job_id, "status": status.value}))
    else:
        console.print(f"job {job_id}: {status.value}")


# --- watching, listing, exporting, derived jobs, dry run, doctor ---------------------------------

AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
SubmittedBy = Annotated[str, typer.Option(help="Recorded on the new job")]


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(message)
    return typer.Exit(code)


@app.command()
def watch(job_id: int, as_json: AsJson = False) -> None:
    """Follow a job live (progress, rate, ETA, outcomes) until it ends; --json prints a line per
    change."""
    raise typer.Exit(_follow(job_id, as_json=as_json, stream=True))


@app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="Only jobs in this status")] = None,
    submitted_by: Annotated[str | None, typer.Option(help="Only jobs of this submitter")] = None,
    limit: Annotated[int, typer.Option(help="Jobs per page")] = 20,
    cursor: Annotated[str | None, typer.Option(help="The next_cursor of the page before")] = None,
    as_json: AsJson = False,
) -> None:
    """Jobs, newest first."""
    from worker.db.engine import get_engine
    from worker.service import InvalidQuery, list_jobs

    try:
        page = list_jobs(
            get_engine(), status=status, submitted_by=submitted_by, cursor=cursor, limit=limit
        )
    except InvalidQuery as bad:
        raise _fail(str(bad), 2) from None
    if as_json:
        jobs = [v.as_dict() for v in page.items]
        print(json.dumps({"jobs": jobs, "next_cursor": page.next_cursor}))
        return
    table = Table(min_width=60)
    for column in ("id", "status", "by", "SKUs", "done", "failed", "from", "created"):
        table.add_column(column, justify="right" if column in ("id", "SKUs", "done") else "left")
    for v in page.items:
        origin = f"{v.derived_reason} of {v.parent_job_id}" if v.parent_job_id else ""
        table.add_row(
            str(v.id),
            v.status.value + (" (dry run)" if v.dry_run else ""),
            v.submitted_by,
            str(v.total),
            str(v.done),
            str(v.counts.get("failed", 0)),
            origin,
            v.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")


class ItemFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


@app.command()
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
    from worker.db.engine import get_engine
    from worker.service import InvalidQuery, JobNotFound, export_items_csv, iter_items

    engine = get_engine()
    filters: dict[str, Any] = {
        "status": status,
        "error_kind": error_kind,
        "line_item_id": line_item,
        "sku_id": sku,
    }
    if _view(job_id) is None:
        raise _fail(f"no job {job_id}", EXIT_NOT_FOUND)
    try:
        with output.open("w", newline="", encoding="utf-8") if output else _stdout() as out:
            if as_json or fmt is ItemFormat.JSON:
                stream = iter_items(engine, job_id, **filters)
                out.write("[")
                for n, item in enumerate(stream):
                    out.write(("," if n else "") + "\n" + json.dumps(item))
                out.write("\n]\n")
            else:
                written = export_items_csv(engine, job_id, out, **filters)
                if output:
                    err_console.print(f"{written} rows written to {output}")
    except InvalidQuery as bad:
        raise _fail(str(bad), 2) from None
    except JobNotFound:
        raise _fail(f"no job {job_id}", EXIT_NOT_FOUND) from None


@contextmanager
def _stdout() -> Iterator[TextIO]:
    yield sys.stdout
    sys.stdout.flush()


def _derived(run: Any, job_id: int, *, wait: bool, as_json: bool, what: str) -> None:
    """Make a retry or revert job and report it the way `submit` does."""
    from worker.service import InvalidQuery, JobNotFound, NothingToDo
    from worker.submission import SubmissionRejected

    try:
        result = run()
    except JobNotFound:
        raise _fail(f"no job {job_id}", EXIT_NOT_FOUND) from None
    except NothingToDo as nothing:
        if as_json:
            print(json.dumps({"nothing_to_do": str(nothing)}))
        raise _fail(str(nothing), EXIT_NOTHING_TO_DO) from None
    except (InvalidQuery, SubmissionRejected) as bad:
        raise _fail(f"rejected, nothing stored: {bad}", 2) from None
    if as_json and not wait:
        print(
            json.dumps(
                {
                    "id": result.job_id,
                    "parent_job_id": job_id,
                    "total": result.total,
                    "created": result.created,
                    "skipped": result.skipped,
                }
            )
        )
    elif not as_json:
        console.print(f"job {result.job_id}: {what} of job {job_id}, {result.total} SKU changes")
        from worker.domain.derive import REASON_TEXT, NotRevertible

        for reason, n in result.skipped.items():
            console.print(f"  not reverted: {n} SKU(s): {REASON_TEXT[NotRevertible(reason)]}")
    if wait:
        raise typer.Exit(_follow(result.job_id, as_json=as_json))


@app.command()
def retry(
    job_id: int,
    error_kind: Annotated[
        list[str] | None, typer.Option(help="Only SKUs that failed this way (repeatable)")
    ] = None,
    max_bid: MaxBid = None,
    max_change_ratio: MaxChangeRatio = None,
    guardrails: Guardrails = None,
    submitted_by: SubmittedBy = "cli",
    wait: Annotated[bool, typer.Option(help="Follow the new job")] = False,
    as_json: AsJson = False,
) -> None:
    """A new job, linked to JOB, of exactly its failed SKUs with the same actions and bids."""
    from worker.db.engine import get_engine
    from worker.service import retry_failed
    from worker.tasks import dispatch_chunks

    options = _guardrail_options(max_bid, max_change_ratio, guardrails)
    _derived(
        lambda: retry_failed(
            get_engine(),
            job_id,
            error_kinds=error_kind,
            submitted_by=submitted_by,
            dispatch=dispatch_chunks,
            options=options,
        ),
        job_id,
        wait=wait,
        as_json=as_json,
        what="retry",
    )


@app.command()
def revert(
    job_id: int,
    submitted_by: SubmittedBy = "cli",
    wait: Annotated[bool, typer.Option(help="Follow the new job")] = False,
    as_json: AsJson = False,
) -> None:
    """A new job, linked to JOB, that restores the before-state of every SKU JOB changed."""
    from worker.db.engine import get_engine
    from worker.service import revert_job
    from worker.tasks import dispatch_chunks

    _derived(
        lambda: revert_job(
            get_engine(), job_id, submitted_by=submitted_by, dispatch=dispatch_chunks
        ),
        job_id,
        wait=wait,
        as_json=as_json,
        what="revert",
    )


@app.command("dry-run")
def dry_run(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file")],
    show: Annotated[int, typer.Option(help="SKUs to describe (all: use `items`)")] = 20,
    max_bid: MaxBid = None,
    max_change_ratio: MaxChangeRatio = None,
    guardrails: Guardrails = None,
    submitted_by: SubmittedBy = "cli",
    as_json: AsJson = False,
) -> None:
    """What a CSV would do, SKU by SKU, from a fresh read of each line item, with no write."""
    from worker.db.engine import get_engine
    from worker.service import list_items
    from worker.submission import JobRequest, SubmissionRejected

    request = JobRequest(
        submitted_by=submitted_by,
        dry_run=True,
        options=_guardrail_options(max_bid, max_change_ratio, guardrails),
    )
    try:
        result = submit_job_file(file, request)
    except SubmissionRejected as rejected:
        _refuse(rejected, as_json=as_json)
    if not as_json:
        console.print(f"dry run {result.job_id}: {result.total} SKUs, reading their line items")
        _follow(result.job_id, as_json=False)
    view = _view(result.job_id)
    while view.status not in EXIT_FOR_STATUS:
        time.sleep(0.5)
        view = _view(result.job_id)
    # What would change first, then what would fail: the unchanged are the least news.
    shown: list[dict[str, Any]] = []
    for outcome in ("succeeded", "failed", "unchanged"):
        if len(shown) < show:
            page = list_items(get_engine(), result.job_id, status=outcome, limit=show)
            shown += page.items[: show - len(shown)]
    if as_json:
        print(json.dumps({**view.as_dict(), "items": shown}))
        raise typer.Exit(EXIT_FOR_STATUS[view.status])
    table = Table(title=f"first {len(shown)} of {view.total} SKUs", min_width=60)
    for column in ("line item", "SKU", "action", "what would happen"):
        table.add_column(column, overflow="fold")
    for item in shown:
        table.add_row(item["line_item_id"], item["sku_id"], item["action"], item["description"])
    console.print(table)
    console.print(f"every SKU: promobulk items {result.job_id} --format csv")
    raise typer.Exit(EXIT_FOR_STATUS[view.status])


@app.command()
def doctor(
    line_item: Annotated[
        int | None, typer.Option(help="Also check that the app can read and manage it")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Check the configuration, database and migrations, Redis, the API token and, for a line
    item, read and manage access; each with a verdict and the fix."""
    from worker.doctor import Verdict, run_checks

    checks = run_checks(line_item)
    failed = any(c.verdict is Verdict.FAIL for c in checks)
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [c.as_dict() for c in checks]}))
    else:
        colour = {"ok": "green", "warn": "yellow", "fail": "red", "skipped": "dim"}
        table = Table(min_width=60)
        for column in ("check", "verdict", "detail", "fix"):
            table.add_column(column, overflow="fold")
        for c in checks:
            verdict = f"[{colour[c.verdict]}]{c.verdict.value}[/]"
            table.add_row(c.name, verdict, c.detail, c.fix or "")
        console.print(table)
    raise typer.Exit(EXIT_DOCTOR if failed else 0)


@app.command(context_settings=PASS_THROUGH)
def worker(ctx: typer.Context) -> None:
    """Start a Celery worker; Celery's own options pass through (--concurrency, -Q, --pool ...)."""
    if get_settings().worker_metrics_port:
        _prepare_metrics_dir()
    from worker.tasks import QUEUES
    from worker.tasks import app as celery_app

    args = list(ctx.args)
    if not any(a in ("-Q", "--queues") or a.startswith(("-Q", "--queues=")) for a in args):
        args += ["-Q", f"{QUEUES[Priority.HIGH]},{QUEUES[Priority.NORMAL]}"]
    celery_app.worker_main(["worker", *args])


def _prepare_metrics_dir() -> None:
    """Before prometheus_client is imported: the directory where the prefork children write
    their metrics (PROMETHEUS_MULTIPROC_DIR, or a new temporary one), emptied of a previous
    run's files, which would otherwise be added to this run's counts."""
    import os
    import tempfile

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="promobulk-m-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    Path(path).mkdir(parents=True, exist_ok=True)
    for stale in Path(path).glob("*.db"):
        stale.unlink()


@app.command(context_settings=PASS_THROUGH)
def beat(ctx: typer.Context) -> None:
    """Start Celery beat: re-dispatches lost and parked chunks, reclaims expired leases."""
    from worker.tasks import app as celery_app

    celery_app.start(["beat", *ctx.args])


@app.command()
def simulator(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    host: str = "127.0.0.1",
    scenario: Annotated[Path | None, typer.Option(exists=True, dir_okay=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Generate the scenario from this seed")] = None,
) -> None:
    """Run the Criteo Retail Media API simulator."""
    from worker.logs import configure_logging
    from worker.simulator.server import run_forever

    configure_logging(get_settings())

    run_forever(host, port, scenario, seed)


@app.command()
def demo(
    line_items: Annotated[int, typer.Option(help="Line items in the sample scenario")] = 60,
    skus: Annotated[int, typer.Option(help="Promoted SKUs per line item")] = 60,
    rate_limit: Annotated[int, typer.Option(help="Calls a minute, simulator and worker")] = 1200,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 2,
) -> None:
    """Everything on this machine: Postgres, Redis, the simulator, a worker and a sample job."""
    from worker.demo import run_demo

    raise typer.Exit(
        run_demo(line_items=line_items, skus=skus, rate_limit=rate_limit, workers=workers)
    )


# --- HTTP API and its keys ---

api_key_app = typer.Typer(help="Keys of the HTTP API.", no_args_is_help=True)
app.add_typer(api_key_app, name="api-key")


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Serve the HTTP API (keys: `promobulk api-key create NAME`)."""
    from worker.api import run_api

    run_api(host, port)


@api_key_app.command("create")
def api_key_create(
    name: Annotated[str, typer.Argument(help="The submitter recorded on this key's jobs")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Make a key; it is shown this once and only its hash is kept."""
    from worker.api.auth import create_key
    from worker.db.engine import get_engine

    try:
        new = create_key(get_engine(), name)
    except ValueError as bad:
        err_console.print(str(bad))
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps({"id": new.id, "name": new.name, "key": new.key}))
    else:
        console.print(f"key {new.id} for {new.name!r} (shown once, keep it now):")
        print(new.key)


@api_key_app.command("list")
def api_key_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Keys by id, with their names and first characters; never the keys themselves."""
    from worker.api.auth import list_keys
    from worker.db.engine import get_engine

    keys = list_keys(get_engine())
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "id": k.id,
                        "name": k.name,
                        "prefix": k.prefix,
                        "created_at": k.created_at.isoformat(),
                        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                    }
                    for k in keys
                ]
            )
        )
        return
    table = Table(title="API keys")
    for column in ("id", "name", "starts with", "created", "revoked"):
        table.add_column(column)
    for k in keys:
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ""
        created = k.created_at.isoformat(timespec="seconds")
        table.add_row(str(k.id), k.name, k.prefix + "…", created, revoked)
    console.print(table)


@api_key_app.command("revoke")
def api_key_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `api-key list`)")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Revoke a key: its next request is refused."""
    from worker.api.auth import revoke_key
    from worker.db.engine import get_engine

    if not revoke_key(get_engine(), key_id):
        err_console.print(f"no key {key_id}")
        raise typer.Exit(5)
    if as_json:
        print(json.dumps({"id": key_id, "revoked": True}))
    else:
        console.print(f"key {key_id} revoked")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
