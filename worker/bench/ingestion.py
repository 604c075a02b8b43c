"""Section 3 of the benchmark: ingestion and memory at two sizes, and where ingestion's time
goes (a profile of an in-process submit)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from worker.bench import profiling
from worker.bench.config import Sizes
from worker.bench.jobrun import REPEATS, cpu_delta, run_job, spread, statement_costs
from worker.bench.procfs import load_average, tree_cpu_seconds
from worker.bench.scenarios import World, write_job_csv
from worker.bench.stack import UNLIMITED, Stack


def scale(stack: Stack, world: World, sizes: Sizes) -> dict[str, Any]:
    runs = []
    for line_items in sizes.scale_line_items:
        refs = world.job(line_items)
        csv_path = stack.workdir / f"scale-{line_items}.csv"
        rows = write_job_csv(refs, world.seed, csv_path)
        run = run_job(
            stack,
            world,
            csv_path,
            name=f"scale-{line_items}",
            rate_limit=UNLIMITED,
            latency_ms=0,
            concurrency=sizes.scale_workers,
            timeout=rows / 100 + 300,
        )
        env = stack.env(UNLIMITED)
        ingestions = [
            {
                "submit_seconds": run["submit_seconds"],
                "rows_per_second": round(rows / run["submit_seconds"], 1),
                "load_average_before": run["load_average_before"],
            },
            *(resubmit(stack, csv_path, rows, env) for _ in range(REPEATS - 1)),
        ]
        runs.append(
            {
                "rows": rows,
                "line_items": line_items,
                "csv_mb": round(csv_path.stat().st_size / 1e6, 1),
                "submit_seconds": run["submit_seconds"],
                "rows_per_second": round(rows / run["submit_seconds"], 1),
                "ingestion": spread(ingestions, "rows_per_second"),
                "submit_peak_rss_mb": run["submit_peak_rss_mb"],
                "worker_child_peak_rss_mb": run["worker_child_peak_rss_mb"],
                "worker_main_peak_rss_mb": run["worker_main_peak_rss_mb"],
                "skus_per_second_end_to_end": run["skus_per_second_end_to_end"],
                "run": run,
            }
        )
    largest = stack.workdir / f"scale-{sizes.scale_line_items[-1]}.csv"
    profile = ingestion_profile(stack, largest, runs[-1]["rows"])
    for line_items in sizes.scale_line_items:
        (stack.workdir / f"scale-{line_items}.csv").unlink()
    return {"runs": runs, "ingestion_profile": profile}


def resubmit(stack: Stack, csv_path: Path, rows: int, env: dict[str, str]) -> dict[str, Any]:
    """The same file submitted again by `promobulk submit`, timed, then withdrawn (its rows
    deleted, its queued messages purged) so that it costs no processing: one more measure of
    ingestion."""
    load = load_average()
    job_id, submitted = stack.submit(csv_path, env)
    stack.withdraw(job_id)
    return {
        "submit_seconds": round(submitted.wall_seconds, 2),
        "rows_per_second": round(rows / submitted.wall_seconds, 1),
        "load_average_before": load,
    }


def ingestion_profile(stack: Stack, csv_path: Path, rows: int) -> dict[str, Any]:
    """The largest file submitted once more, in this process, through `submit_csv` (what
    `promobulk submit` calls), sampled by py-spy: where ingestion's time goes.

    Its chunks are not dispatched and would hold their line items: this must run last.
    """
    from worker.config import Settings
    from worker.db.engine import make_engine
    from worker.domain.access import operator
    from worker.jobs.documents import JobFields
    from worker.jobs.service import Jobs

    engine = make_engine(stack.database_url)
    output = stack.workdir / "ingestion-profile.txt"
    dispatch = _ProbeDispatch(stack.redis_url)
    recording = profiling.start(os.getpid(), output)
    time.sleep(0.5)
    cpu_before = {"postgres": tree_cpu_seconds(stack.postgres_pid or 0)}
    with (
        stack.statement_log() as logged,
        csv_path.open(newline="", encoding="utf-8-sig") as stream,
    ):
        started = time.monotonic()
        settings = Settings(DATABASE_URL=stack.database_url)
        jobs = Jobs(engine, settings, dispatch, operator("bench-profile"))
        submitted = jobs.submit_csv(stream, JobFields())
        wall = time.monotonic() - started
    cpu_after = {"postgres": tree_cpu_seconds(stack.postgres_pid or 0)}
    if recording:
        profiling.stop(recording)
    engine.dispose()
    dispatch.close()
    summary = profiling.summarise(output) if recording else {"skipped": "py-spy missing"}
    return {
        "rows": rows,
        "stored": submitted.total,
        "in_process_seconds": round(wall, 2),
        "in_process_rows_per_second": round(rows / wall, 1),
        "dispatch_seconds": round(dispatch.seconds, 2),
        "dispatched_messages": dispatch.messages,
        "postgres_statements": statement_costs(logged, rows, "row"),
        "postgres_cpu_seconds": cpu_delta(cpu_before, cpu_after)["postgres"],
        "tool": "py-spy record --nonblocking --rate 200 on an in-process submit_csv",
        **summary,
    }


class _ProbeDispatch:
    """Dispatch as `worker.tasks.dispatch_chunks` does (one Celery message per chunk, on the
    same Redis), timed, to a queue of its own that no worker reads and that is deleted after."""

    QUEUE = "promobulk.bench-dispatch-probe"

    def __init__(self, redis_url: str) -> None:
        from worker.config import Settings
        from worker.tasks import make_celery

        self.app = make_celery(Settings.model_validate({"REDIS_URL": redis_url}))
        self.redis_url = redis_url
        self.seconds = 0.0
        self.messages = 0

    def __call__(self, chunks: Sequence[tuple[int, Any]]) -> None:
        started = time.monotonic()
        for chunk_id, _ in chunks:
            self.app.send_task("promobulk.run_chunk", (chunk_id,), queue=self.QUEUE)
        self.seconds += time.monotonic() - started
        self.messages += len(chunks)

    def close(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            client.delete(self.QUEUE)
        finally:
            client.close()
