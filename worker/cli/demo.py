"""`promobulk demo`: a night of repricing on one machine, with nothing installed but Python.

Starts a real Postgres and a Redis-compatible Valkey from PyPI packages (or uses DATABASE_URL /
REDIS_URL when set), the Criteo simulator, real worker processes, submits a sample job, shows
its progress and ends with a summary of outcomes and API calls.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


def run_demo(*, line_items: int, skus: int, rate_limit: int, workers: int) -> int:
    from worker.embedded import default_state_dir, start_postgres, start_valkey
    from worker.localstack import stack_env, start_worker, stop_process
    from worker.sample import sample_rows, write_csv
    from worker.simulator.control import SimulatorControl
    from worker.simulator.scenario import generate
    from worker.simulator.server import start_in_thread

    with ExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL")
        redis_url = os.environ.get("REDIS_URL")
        state = default_state_dir()
        if not database_url:
            database_url, pg = start_postgres(state / "pg")
            stack.callback(pg.cleanup)
        if not redis_url:
            redis_url, valkey = start_valkey()
            stack.callback(valkey.stop)
        console.print(
            f"[bold]postgres[/] {database_url.split('?')[0]}   [bold]redis[/] {redis_url}"
        )

        scenario = generate(seed=7, line_items=line_items, skus_per_line_item=skus)
        sim = start_in_thread(scenario, seed=7)
        stack.callback(sim.stop)
        control = SimulatorControl(sim.url)
        control.configure(rate_limit_per_minute=rate_limit)
        console.print(f"[bold]simulator[/] {sim.url}  ({rate_limit} calls a minute)")

        env = stack_env(
            database_url=database_url, redis_url=redis_url, api_url=sim.url, rate_limit=rate_limit
        )
        os.environ.update(env)
        from worker.config import get_settings

        get_settings.cache_clear()
        from worker.jobs import schema

        schema.upgrade(get_settings())
        log = state / "worker.log"
        process = start_worker(env, concurrency=workers, log=log)
        console.print(f"[bold]worker[/] {workers} processes (log: {log})")
        stack.callback(stop_process, process)

        rows = sample_rows(scenario, seed=7)
        csv_path = write_csv(rows, Path(tempfile.mkdtemp()) / "repricing.csv")
        console.print(
            f"[bold]sample job[/] {len(rows)} SKU changes over {line_items + 1} line items"
            f" ({csv_path})"
        )
        from worker.cli.app import Exit
        from worker.cli.progress import follow
        from worker.domain.access import operator
        from worker.jobs.documents import JobFields
        from worker.jobs.service import Jobs
        from worker.tasks import dispatch_chunks

        jobs = Jobs.open(get_settings(), dispatch_chunks, operator("demo"))
        started = time.monotonic()
        with csv_path.open("rb") as stream:
            job_id = jobs.submit_csv(stream, JobFields()).id
        code = follow(jobs, job_id)
        elapsed = time.monotonic() - started
        _api_summary(control.requests(), elapsed, rate_limit)
        # The sample job asks for changes the API refuses: finishing with failed SKUs is the
        # demo working. Anything else (failed, cancelled) is not.
        return Exit.OK if code in (Exit.OK, Exit.WITH_FAILURES) else code
    return 1


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
