"""`promobulk demo`: a night of repricing on one machine, with nothing installed but Python.

The same stack as `promobulk up --simulator` (`worker.stack`: real Postgres and Valkey from PyPI
packages unless DATABASE_URL / REDIS_URL are set, the Criteo simulator, real worker processes),
in a state folder of its own and with a generated scenario; it submits a sample job, shows its
progress and ends with a summary of outcomes and API calls, then stops everything.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


def demo_state_dir() -> Path:
    """The demo's own folder, never `up`'s: a demo job must not be run by `up`'s workers against
    another API. In the system's temporary folder, where Postgres can reach it as root (pgserver
    then runs it as its own user, which cannot enter a root-only checkout)."""
    return Path(tempfile.gettempdir()) / f"promobulk-demo-{os.getuid()}"


def run_demo(
    *, line_items: int, skus: int, rate_limit: int, workers: int, state_dir: Path | None
) -> int:
    from worker.cli.app import Exit
    from worker.cli.progress import follow
    from worker.cli.render import step_reporter
    from worker.domain.access import operator
    from worker.jobs.documents import JobFields
    from worker.jobs.service import Jobs
    from worker.sample import sample_rows, write_csv
    from worker.simulator.control import SimulatorControl
    from worker.simulator.scenario import generate
    from worker.stack import SimulatorSpec, Stack, StackSpec

    state = state_dir or demo_state_dir()
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)
    scenario = generate(seed=7, line_items=line_items, skus_per_line_item=skus)
    scenario_file = state / "scenario.json"
    scenario_file.write_text(scenario.model_dump_json())
    spec = StackSpec(
        state_dir=state,
        workers=workers,
        simulator=SimulatorSpec(scenario_file, rate_limit),
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL") or None,
    )
    with Stack(spec, step_reporter(console)) as stack:
        started = stack.start()
        assert started.simulator_url is not None
        rows = sample_rows(scenario, seed=7)
        csv_path = write_csv(rows, state / "repricing.csv")
        console.print(
            f"[bold]sample job[/] {len(rows)} SKU changes over {line_items + 1} line items"
            f" ({csv_path})"
        )
        settings = stack.settings()
        # Only now: the Celery app of worker.tasks is made for the broker of the settings of
        # the moment it is first imported, and that is the stack's from here on.
        from worker.tasks import dispatch_chunks

        jobs = Jobs.open(settings, dispatch_chunks, operator("demo"))
        began = time.monotonic()
        with csv_path.open("rb") as stream:
            job_id = jobs.submit_csv(stream, JobFields()).id
        code = follow(jobs, job_id)
        elapsed = time.monotonic() - began
        _api_summary(SimulatorControl(started.simulator_url).requests(), elapsed, rate_limit)
    # The sample job asks for changes the API refuses: finishing with failed SKUs is the demo
    # working. Anything else (failed, cancelled) is not.
    return Exit.OK if code in (Exit.OK, Exit.WITH_FAILURES) else code


def _api_summary(requests: dict[str, object], elapsed: float, rate_limit: int) -> None:
    by_endpoint = requests.get("by_endpoint", {})
    table = Table(title="API calls seen by the simulator", min_width=48)
    table.add_column("endpoint")
    table.add_column("status")
    table.add_column("calls", justify="right")
    total: Counter[str] = Counter()
    if isinstance(by_endpoint, dict):
        for endpoint, statuses in sorted(by_endpoint.items()):
            for code, n in sorted(dict(statuses).items()):
                table.add_row(endpoint, str(code), str(n))
                if endpoint != "token":
                    total[str(code)] += int(n)
    console.print(table)
    calls = sum(total.values())
    floor = calls / rate_limit * 60
    console.print(
        f"{calls} API calls in {elapsed:.1f}s; at {rate_limit}/min the floor is {floor:.1f}s"
    )
