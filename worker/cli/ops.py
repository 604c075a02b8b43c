"""Commands that run or check the product's processes: db, worker, beat, api, simulator, demo,
doctor."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from worker.cli.app import AsJson, Exit, app, console
from worker.config import get_settings
from worker.domain.enums import Priority
from worker.jobs import schema

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the migrations (idempotent)."""
    schema.upgrade(get_settings(), revision)
    console.print(f"database at {revision}")


@db_app.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree."""
    schema.check(get_settings())
    console.print("models and migrations agree")


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
    raise typer.Exit(Exit.DOCTOR if failed else Exit.OK)


@app.command(context_settings=PASS_THROUGH)
def worker(ctx: typer.Context) -> None:
    """Start a Celery worker; Celery's own options pass through (--concurrency, -Q, --pool ...)."""
    from worker.failures import require_credentials

    require_credentials(get_settings())  # or every chunk would fail on a refused token
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
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="promobulk-m-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    Path(path).mkdir(parents=True, exist_ok=True)
    for stale in Path(path).glob("*.db"):
        stale.unlink()


@app.command(context_settings=PASS_THROUGH)
def beat(ctx: typer.Context) -> None:
    """Start Celery beat: not needed, the workers sweep in turn; an extra trigger of the sweep."""
    from worker.tasks import app as celery_app

    celery_app.start(["beat", *ctx.args])


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Serve the HTTP API (keys: `promobulk api-key create NAME`)."""
    from worker.api import run_api

    run_api(host, port)


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
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Its own data folder (default: promobulk-demo-UID in the temporary folder)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Everything on this machine: Postgres, Redis, the simulator, a worker and a sample job."""
    from worker.cli.demo import run_demo

    raise typer.Exit(
        run_demo(
            line_items=line_items,
            skus=skus,
            rate_limit=rate_limit,
            workers=workers,
            state_dir=state_dir,
        )
    )
