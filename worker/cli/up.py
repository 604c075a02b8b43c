"""`promobulk up`: the whole product on this machine, in the foreground, until Ctrl-C.

Everything is started by `worker.stack` (the demo's stack too); this module decides what to
start from the settings given, says where everything is, makes the operator key on the first
start, watches the stack while it runs and stops it in order on SIGINT, SIGTERM or SIGHUP (a
second one stops it at once).
"""

from __future__ import annotations

import signal
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from worker import stackfile
from worker.cli.app import AsJson, Exit, app, console, err_console, jobs, print_json
from worker.cli.render import step_reporter
from worker.config import GivenSettings
from worker.domain.enums import Role
from worker.failures import require_credentials
from worker.logs import Redactor
from worker.stack import Interrupted, SimulatorSpec, Stack, StackFailed, StackSpec, Started

OPERATOR_KEY_NAME = "operator"
DEMO_SCENARIO = Path(str(resources.files("worker.simulator") / "scenarios" / "demo.json"))


def _operator_key() -> str | None:
    """A key that may do everything, made on the first start and shown that once (only its
    hash is kept); None when one exists already."""
    keys = jobs().keys
    if any(k.name == OPERATOR_KEY_NAME and k.revoked_at is None for k in keys.list()):
        return None
    return keys.create(OPERATOR_KEY_NAME, Role.OPERATE).key


def _spec(state_dir: Path | None, workers: int, host: str, port: int, simulator: bool) -> StackSpec:
    """What to start: the servers the environment or .env name are used as they are."""
    given = GivenSettings()
    if not simulator:
        require_credentials(given)
    rehearsal = SimulatorSpec(DEMO_SCENARIO, given.criteo_rate_limit_per_minute, keep_state=True)
    return StackSpec(
        state_dir=state_dir or stackfile.state_dir(),
        workers=workers,
        api=(host, port),
        simulator=rehearsal if simulator else None,
        database_url=given.database_url if "database_url" in given.model_fields_set else None,
        redis_url=given.redis_url if "redis_url" in given.model_fields_set else None,
        publish=True,
    )


def _ready(started: Started, key: str | None, seconds: float, as_json: bool) -> None:
    shown = Redactor()
    if as_json:
        print_json(
            {
                "api_url": started.api_url,
                "api_key": key,
                "database_url": shown.text(started.database_url),
                "redis_url": shown.text(started.redis_url),
                "simulator_url": started.simulator_url,
                "state_dir": str(started.state_dir),
            }
        )
        return
    console.print(
        Text.assemble(
            ("ready", "bold green"),
            f" in {seconds:.1f}s; running until Ctrl-C (logs: {started.logs})",
        )
    )
    where = {
        "API": started.api_url,
        "database": shown.text(started.database_url),
        "redis": shown.text(started.redis_url),
        "simulator": started.simulator_url,
    }
    for name, url in where.items():
        if url:
            console.print(Text.assemble((f"  {name:<11}", "bold"), url))
    if key is not None:
        console.print(Text.assemble(("  key        ", "bold"), "operator, shown this once:"))
        print(f"  {key}", flush=True)
    else:
        console.print(
            Text.assemble(
                ("  key        ", "bold"),
                "shown at the first start (more: promobulk api-key create)",
            )
        )
    console.print(
        "Another terminal finds this stack with no settings:\n"
        "  promobulk submit night.csv --wait\n"
        f'  curl -H "Authorization: Bearer $KEY" {started.api_url}/v1/jobs\n'
        "Ctrl-C stops it in order; unfinished jobs go on at the next `promobulk up`.",
        highlight=False,
        markup=False,
    )


def _watch(stack: Stack, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        stack.check()


@app.command(
    help="Run promobulk on this machine until Ctrl-C: Postgres and Valkey (embedded unless"
    " DATABASE_URL / REDIS_URL are set), the schema, workers, the sweep and the HTTP API; other"
    " promobulk commands find it."
)
def up(
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the data lives (default: PROMOBULK_STATE_DIR, else the user's data"
            " directory)",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 2,
    host: Annotated[str, typer.Option(help="Address of the HTTP API")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the HTTP API")] = 8000,
    simulator: Annotated[
        bool,
        typer.Option(
            "--simulator",
            help="Also run the bundled Criteo API simulator and point the workers at it"
            " (rehearsals; its state is kept between runs)",
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Start the stack, say where it is, watch it, stop it in order (see the module)."""
    spec = _spec(state_dir, workers, host, port, simulator)
    began = time.monotonic()
    stop, hurry = threading.Event(), threading.Event()

    def on_signal(signum: int, _: object) -> None:
        if stop.is_set():
            hurry.set()
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    out = err_console if as_json else console
    out.print(Text.assemble(("promobulk up", "bold"), f"  (state: {spec.state_dir})"))
    stack = Stack(spec, step_reporter(out), interrupted=stop.is_set)
    code = Exit.OK
    try:
        started = stack.start()
        _ready(started, _operator_key(), time.monotonic() - began, as_json)
        _watch(stack, stop)
    except Interrupted:
        code = Exit.INTERRUPTED
    except StackFailed as failure:
        err_console.print(Text.assemble(("error: ", "bold red"), str(failure)))
        err_console.print("  fix: read that log; promobulk up again goes on where it stopped")
        code = Exit.UNEXPECTED
    finally:
        stopping = time.monotonic()
        if stack.running:  # not when it refused to start (the refusal is said by `failed`)
            out.print("stopping (Ctrl-C again: at once)")
        stack.stop(hurry.is_set)
    unfinished = stack.unfinished_jobs
    note = f"; {unfinished} unfinished job(s) go on at the next promobulk up" if unfinished else ""
    out.print(f"stopped in {time.monotonic() - stopping:.1f}s{note}", highlight=False)
    raise typer.Exit(code)
