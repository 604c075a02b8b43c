"""The sections of the benchmark: overnight repricing at the rate limit, engine overhead without
one, ingestion and memory at two sizes, and the peers on the same simulator.

Every job runs the same way: a fresh `promobulk worker`, a warm-up job (so its processes are up
and hold a token), the simulator reset to its scenario with an empty log, then the job submitted
by `promobulk submit` and followed in the database until it ends.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.bench import peers as peer_loops
from worker.bench import profiling
from worker.bench.config import Sizes, concurrency_for, rate_for
from worker.bench.procfs import cpu_seconds, hwm_mb, load_average, tree_cpu_seconds
from worker.bench.scenarios import (
    Economy,
    World,
    desired_state,
    economy,
    rows_for,
    warmup_csv,
    write_job_csv,
    wrong_skus,
)
from worker.bench.stack import UNLIMITED, Stack

REAL_LIMIT = 250  # the API's own calls a minute per application
API_VERSION = "2026-07"
#: Throughput is noisy on a shared machine: each figure is measured this many times, reported
#: as its range with the load average before each run, and judged on its median.
REPEATS = 3


def log_stats(entries: Sequence[dict[str, Any]], limit: int) -> dict[str, Any]:
    """What the simulator saw: calls (token calls apart), 429s, and the rate between the first
    and the last call."""
    calls = [e for e in entries if e["endpoint"] != "token"]
    by_endpoint: Counter[str] = Counter(e["endpoint"] for e in calls)
    statuses: Counter[str] = Counter(str(e["status"]) for e in calls)
    out: dict[str, Any] = {
        "calls": len(calls),
        "token_calls": len(entries) - len(calls),
        "by_endpoint": dict(sorted(by_endpoint.items())),
        "by_status": dict(sorted(statuses.items())),
        "429s": statuses.get("429", 0),
        "errors": sum(n for s, n in statuses.items() if not s.startswith("2")),
    }
    if len(calls) >= 2:
        first, last = calls[0]["t"], calls[-1]["t"]
        window = last - first
        out["first_call"] = first
        out["last_call"] = last
        out["window_seconds"] = round(window, 3)
        per_minute = (len(calls) - 1) / window * 60 if window > 0 else math.inf
        out["achieved_per_minute"] = round(per_minute, 1)
        out["achieved_vs_limit"] = round(per_minute / limit, 4) if limit < UNLIMITED else None
    return out


@dataclass
class Processes:
    """CPU time of everything a job runs on, sampled before and after it."""

    stack: Stack
    worker: subprocess.Popen[bytes]

    def sample(self) -> dict[str, float]:
        out = {
            "worker": tree_cpu_seconds(self.worker.pid),
            "simulator": cpu_seconds(self.stack.sim.process.pid),
        }
        if self.stack.postgres_pid:
            out["postgres"] = tree_cpu_seconds(self.stack.postgres_pid)
        if self.stack.redis_pid:
            out["redis"] = cpu_seconds(self.stack.redis_pid)
        return out


def _cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before.get(k, 0.0), 2) for k in after}


def _table_delta(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for table, counts in after.items():
        delta: dict[str, Any] = {k: v - before.get(table, {}).get(k, 0) for k, v in counts.items()}
        delta["hot_share"] = round(delta["hot"] / delta["updated"], 3) if delta["updated"] else None
        out[table] = delta
    return out


def run_job(
    stack: Stack,
    world: World,
    csv_path: Path,
    *,
    name: str,
    rate_limit: int,
    latency_ms: int,
    concurrency: int,
    timeout: float,
    during: Callable[[subprocess.Popen[bytes]], Callable[[], None]] | None = None,
) -> dict[str, Any]:
    """One measured job on a fresh worker; returns times, throughput, calls, CPU and memory."""
    env = stack.env(rate_limit)
    stack.clear_limiter()
    stack.sim.reset(rate_limit=rate_limit, latency_ms=latency_ms)
    worker = stack.start_worker(env, concurrency, name)
    try:
        warm = warmup_csv(world, stack.workdir / "warmup.csv")
        warm_id, _ = stack.submit(warm, env)
        stack.wait_job(warm_id, timeout=120)
        children = stack.worker_children(worker, concurrency)
        stack.sim.reset(rate_limit=rate_limit, latency_ms=latency_ms)
        processes = Processes(stack, worker)
        finish_hook = during(worker) if during else None
        cpu_before = processes.sample()
        tables_before = stack.table_stats()
        load_before = load_average()
        submitted_at = time.time()
        job_id, submitted = stack.submit(csv_path, env)
        cpu_submitted = processes.sample()
        result = stack.wait_job(job_id, timeout)
        cpu_after = processes.sample()
        if finish_hook:
            finish_hook()
        timing = stack.job_timing(job_id)
        children_hwm = [hwm_mb(pid) for pid in children]
        main_hwm = hwm_mb(worker.pid)
    finally:
        stack.stop_worker(worker)
    time.sleep(0.5)  # backends flush their statistics as they exit
    tables = _table_delta(tables_before, stack.table_stats())
    entries = stack.sim.log()
    api = log_stats(entries, rate_limit)
    total = int(result["total"])
    end_to_end = timing["finished"] - submitted_at
    processing = timing["last_finish"] - timing["first_start"]
    known = [h for h in children_hwm if h is not None]
    return {
        "job_id": job_id,
        "status": result["status"],
        "skus": total,
        "counts": result["counts"],
        "worker_processes": concurrency,
        "submit_seconds": round(submitted.wall_seconds, 2),
        "submit_peak_rss_mb": round(submitted.peak_rss_mb, 1),
        "submit_cpu_seconds": {
            "submit": round(submitted.cpu_seconds, 2),
            **_cpu_delta(cpu_before, cpu_submitted),
        },
        "end_to_end_seconds": round(end_to_end, 2),
        "processing_seconds": round(processing, 2),
        "skus_per_second_end_to_end": round(total / end_to_end, 1),
        "skus_per_second_processing": round(total / processing, 1) if processing > 0 else None,
        "chunks": timing["chunks"],
        "chunk_p50_ms": timing["chunk_p50_ms"],
        "chunk_p99_ms": timing["chunk_p99_ms"],
        "chunk_max_ms": timing["chunk_max_ms"],
        "max_chunk_attempts": timing["max_attempts"],
        "api": api,
        "cpu_seconds": _cpu_delta(cpu_before, cpu_after),
        "postgres_rows": tables,
        "worker_child_peak_rss_mb": round(max(known), 1) if known else None,
        "worker_children_peak_rss_mb": [None if h is None else round(h, 1) for h in children_hwm],
        "worker_main_peak_rss_mb": None if main_hwm is None else round(main_hwm, 1),
        "load_average_before": load_before,
    }


# --- 1. overnight repricing at the rate limit ---


def overnight(stack: Stack, world: World, sizes: Sizes) -> dict[str, Any]:
    refs = world.job(sizes.overnight_line_items)
    minimum = economy(refs, world.seed)
    rate = rate_for(minimum.calls, sizes.lower_bound_seconds)
    concurrency = sizes.overnight_concurrency or concurrency_for(rate, sizes.latency_ms)
    csv_path = stack.workdir / "overnight.csv"
    write_job_csv(refs, world.seed, csv_path)
    lower_bound = minimum.calls / rate * 60
    run = run_job(
        stack,
        world,
        csv_path,
        name="overnight",
        rate_limit=rate,
        latency_ms=sizes.latency_ms,
        concurrency=concurrency,
        timeout=lower_bound * 4 + 300,
    )
    wrong = wrong_skus(desired_state(refs, world.seed), stack.sim.control.state())
    calls = int(run["api"]["calls"])
    return {
        "line_items": len(refs),
        "skus": minimum.skus,
        "skus_needing_a_call": minimum.changes,
        "latency_ms": sizes.latency_ms,
        "rate_limit_per_minute": rate,
        "rate_limit_note": (
            f"scaled so that the minimum number of calls takes {sizes.lower_bound_seconds:.0f}s"
            f" at best; the real API allows {REAL_LIMIT}/min"
        ),
        "minimum": _economy_dict(minimum),
        "lower_bound_seconds": round(lower_bound, 1),
        "wall_seconds": run["end_to_end_seconds"],
        "wall_vs_lower_bound": round(run["end_to_end_seconds"] / lower_bound, 3),
        "calls": calls,
        "calls_per_line_item": round(calls / len(refs), 3),
        "minimum_calls_per_line_item": round(minimum.calls / len(refs), 3),
        "calls_over_minimum": round(calls / minimum.calls - 1, 4),
        "achieved_vs_limit": run["api"].get("achieved_vs_limit"),
        "429s": run["api"]["429s"],
        "skus_not_in_desired_state": wrong,
        "run": run,
    }


def _economy_dict(minimum: Economy) -> dict[str, Any]:
    return {
        "calls": minimum.calls,
        "reads": minimum.reads,
        "writes": minimum.writes,
        "writes_by_kind": minimum.writes_by_kind,
    }


# --- 2. engine overhead: no rate limit, no latency ---


def engine(stack: Stack, world: World, sizes: Sizes) -> dict[str, Any]:
    refs = world.job(sizes.engine_line_items)
    csv_path = stack.workdir / "engine.csv"
    skus = write_job_csv(refs, world.seed, csv_path)
    runs = []
    for processes in sizes.engine_workers:
        for repeat in range(REPEATS):
            run = run_job(
                stack,
                world,
                csv_path,
                name=f"engine-{processes}-{repeat}",
                rate_limit=UNLIMITED,
                latency_ms=0,
                concurrency=processes,
                timeout=skus / 100 + 300,
            )
            run["cpu_ms_per_chunk"] = {
                k: round(v * 1000 / run["chunks"], 2) for k, v in run["cpu_seconds"].items()
            }
            runs.append(run)
    summary = [
        {
            "worker_processes": processes,
            "skus_per_second_end_to_end": spread(
                [r for r in runs if r["worker_processes"] == processes],
                "skus_per_second_end_to_end",
            ),
        }
        for processes in sizes.engine_workers
    ]
    return {
        "line_items": len(refs),
        "skus": skus,
        "runs": runs,
        "summary": summary,
        "profile": profile(stack, world, sizes),
    }


def profile(stack: Stack, world: World, sizes: Sizes) -> dict[str, Any]:
    """A separate, smaller run with one worker process, sampled by py-spy from outside."""
    if profiling.py_spy() is None:
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    refs = world.job(sizes.profile_line_items)
    csv_path = stack.workdir / "profile.csv"
    skus = write_job_csv(refs, world.seed, csv_path)
    output = stack.workdir / "profile.txt"
    logged: list[list[tuple[float, str, str]]] = []
    scope = contextlib.ExitStack()

    def attach(worker: subprocess.Popen[bytes]) -> Callable[[], None]:
        (child,) = stack.worker_children(worker, 1)[:1]
        recording = profiling.start(child, output)
        time.sleep(0.5)  # py-spy attaches before the job starts
        logged.append(scope.enter_context(stack.statement_log()))  # filled when it closes

        def finish() -> None:
            if recording:
                profiling.stop(recording)
            scope.close()

        return finish

    run = run_job(
        stack,
        world,
        csv_path,
        name="profile",
        rate_limit=UNLIMITED,
        latency_ms=0,
        concurrency=1,
        timeout=skus / 50 + 300,
        during=attach,
    )
    summary = profiling.summarise(output)
    return {
        "postgres_statements": _statements(logged[0] if logged else [], run["chunks"], "chunk"),
        "line_items": len(refs),
        "skus": skus,
        "tool": "py-spy record --nonblocking --rate 200 on the worker's pool process",
        "skus_per_second_processing": run["skus_per_second_processing"],
        "cpu_seconds": run["cpu_seconds"],
        **summary,
    }


# --- 3. ingestion and memory at two sizes ---


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
        "postgres_statements": _statements(logged, rows, "row"),
        "postgres_cpu_seconds": _cpu_delta(cpu_before, cpu_after)["postgres"],
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


# --- 4. peers on the same simulator ---


def peers(stack: Stack, world: World, sizes: Sizes, ours: dict[str, Any]) -> dict[str, Any]:
    """The docs-sample loop and the official-SDK loop on samples of the overnight job's line
    items, at the overnight run's rate limit and latency; extrapolated to the whole job."""
    rate = int(ours["rate_limit_per_minute"])
    full_line_items = int(ours["line_items"])
    our_calls = int(ours["calls"])
    our_wall = float(ours["wall_seconds"])
    results: dict[str, Any] = {}
    for name, count in (
        ("docs_samples", sizes.docs_line_items),
        ("sdk_loop", sizes.sdk_line_items),
    ):
        refs = world.job(count)
        rows = list(rows_for(refs, world.seed))
        stack.sim.reset(rate_limit=rate, latency_ms=sizes.latency_ms)
        if name == "docs_samples":
            run = peer_loops.docs_samples(stack.sim.url, API_VERSION, rows)
        else:
            run = peer_loops.sdk_loop(stack.sim.url, rows)
        api = log_stats(stack.sim.log(), rate)
        wrong = wrong_skus(desired_state(refs, world.seed), _state_of(stack, refs))
        calls_per_li = api["calls"] / count
        seconds_per_li = run.wall_seconds / count
        calls_full = calls_per_li * full_line_items
        paced = seconds_per_li * full_line_items  # sequential: its own pace
        floor = calls_full / rate * 60  # never faster than the limit allows
        pace_per_minute = api["calls"] / run.wall_seconds * 60
        real_floor = calls_full / REAL_LIMIT * 60
        results[name] = {
            "sample_line_items": count,
            "sample_skus": len(rows),
            "calls": api["calls"],
            "429s": api["429s"],
            "failed_calls": run.failed_calls,
            "skus_not_in_desired_state": wrong,
            "wall_seconds": round(run.wall_seconds, 2),
            "calls_per_line_item": round(calls_per_li, 2),
            "seconds_per_line_item": round(seconds_per_li, 3),
            "pace_calls_per_minute": round(pace_per_minute, 1),
            "extrapolated_calls": round(calls_full),
            "extrapolated_wall_seconds": round(max(paced, floor), 1),
            "calls_vs_ours": round(calls_full / our_calls, 2),
            "wall_vs_ours": round(max(paced, floor) / our_wall, 2),
            "at_real_limit": {
                "limit_per_minute": REAL_LIMIT,
                "wall_hours": round(max(paced, real_floor) / 3600, 2),
                "would_exceed_limit": pace_per_minute > REAL_LIMIT,
            },
        }
    ours_real = our_calls / (REAL_LIMIT * 0.98) * 60
    return {
        "rate_limit_per_minute": rate,
        "latency_ms": sizes.latency_ms,
        "ours": {
            "line_items": full_line_items,
            "calls": our_calls,
            "calls_per_line_item": ours["calls_per_line_item"],
            "wall_seconds": our_wall,
            "at_real_limit": {
                "limit_per_minute": REAL_LIMIT,
                "wall_hours": round(ours_real / 3600, 2),
            },
        },
        **results,
        "note": (
            "peers ran on samples of the overnight job's line items on the same simulator, rate"
            " limit and latency; whole-job figures are the sample's per-line-item calls and"
            " seconds times the job's line items, and never faster than the rate limit allows"
        ),
    }


def _statements(logged: list[tuple[float, str, str]], units: int, unit: str) -> dict[str, Any]:
    if not logged:
        return {"skipped": "needs the embedded Postgres (its log)"}
    found = profiling.statements(logged)
    found["note"] = (
        "server-side durations (log_min_duration_statement = 0; parse + bind + execute) per"
        " repository function; statement logging was on for this run only"
    )
    found[f"ms_per_{unit}"] = round(found["total_ms"] / units, 3) if units else None
    return found


def _state_of(stack: Stack, refs: Sequence[Any]) -> dict[str, Any]:
    """The simulator's state of a few line items, in the shape of `/_sim/state`."""
    line_items = []
    for ref in refs:
        for account in stack.sim.control.state(ref.line_item.id)["accounts"]:
            line_items.extend(account["line_items"])
    return {"accounts": [{"line_items": line_items}]}


def spread(runs: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """A figure measured several times: its median (what targets are judged on), its range,
    and each run's value with the load average (1, 5, 15 min) before it."""
    values = [float(r[key]) for r in runs]
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "runs": [
            {"value": v, "load_average_before": r["load_average_before"]}
            for v, r in zip(values, runs, strict=True)
        ],
    }
