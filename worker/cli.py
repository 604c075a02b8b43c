"""The `promobulk` command. Thin: parse, call one function, print.

Exit codes: 0 done (job succeeded); 1 unexpected error; 2 bad input (job rejected, nothing
stored); 3 the job finished with failed SKUs; 4 the job failed or was cancelled; 5 not found.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

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
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Store a job from a CSV (line_item_id,sku_id,action,bid_override[,account_id]) and run it."""
    from worker.submission import JobRequest, SubmissionRejected

    request = JobRequest(
        submitted_by=submitted_by,
        idempotency_key=idempotency_key,
        priority=priority,
        options={"skip_read": True} if skip_read else {},
    )
    try:
        result = submit_job_file(file, request)
    except SubmissionRejected as rejected:
        if as_json:
            print(json.dumps(_rejection(rejected)))
        else:
            err_console.print(
                f"[red]rejected, nothing stored:[/] {rejected.total_errors} problem(s)"
            )
            for error in rejected.errors:
                err_console.print(f"  {error}")
            if rejected.total_errors > len(rejected.errors):
                err_console.print(f"  ... and {rejected.total_errors - len(rejected.errors)} more")
        raise typer.Exit(2) from None
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


def _rejection(rejected: Any) -> dict[str, Any]:
    return {
        "rejected": True,
        "total_errors": rejected.total_errors,
        "errors": [{"row": e.row, "field": e.field, "reason": e.reason} for e in rejected.errors],
    }


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


def _follow(job_id: int, *, as_json: bool, poll: float = 0.5) -> int:
    """Show progress until the job ends; return the exit code its status means."""
    view = _view(job_id)
    if as_json:
        while view.status not in EXIT_FOR_STATUS:
            time.sleep(poll)
            view = _view(job_id)
        print(json.dumps(view.as_dict()))
        return EXIT_FOR_STATUS[view.status]
    columns = [
        TextColumn("[bold]job {task.fields[job]}[/] {task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.1f} SKU/s"),
        TextColumn("ETA {task.fields[eta]}"),
        TimeElapsedColumn(),
    ]
    started = time.monotonic()
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("job", total=view.total, job=job_id, status="", rate=0.0, eta="-")
        while True:
            elapsed = max(time.monotonic() - started, 1e-6)
            rate = view.done / elapsed
            eta = f"{(view.total - view.done) / rate:.0f}s" if rate > 0 else "-"
            progress.update(task, completed=view.done, status=view.status.value, rate=rate, eta=eta)
            if view.status in EXIT_FOR_STATUS:
                break
            time.sleep(poll)
            view = _view(job_id)
    _print_summary(view)
    return EXIT_FOR_STATUS[view.status]


def _print_summary(view: Any) -> None:
    table = Table(title=f"job {view.id}: {view.status.value}", min_width=48)
    table.add_column("outcome")
    table.add_column("SKUs", justify="right")
    for status, n in sorted(view.counts.items()):
        table.add_row(status, str(n))
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


@app.command(context_settings=PASS_THROUGH)
def worker(ctx: typer.Context) -> None:
    """Start a Celery worker; Celery's own options pass through (--concurrency, -Q, --pool ...)."""
    from worker.tasks import QUEUES
    from worker.tasks import app as celery_app

    args = list(ctx.args)
    if not any(a in ("-Q", "--queues") or a.startswith(("-Q", "--queues=")) for a in args):
        args += ["-Q", f"{QUEUES[Priority.HIGH]},{QUEUES[Priority.NORMAL]}"]
    celery_app.worker_main(["worker", *args])


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
    from worker.simulator.server import run_forever

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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
