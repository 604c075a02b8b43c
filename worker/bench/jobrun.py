"""One measured job, the unit every section of the benchmark is made of: a fresh `promobulk
worker`, a warm-up job (so its processes are up and hold a token), the simulator reset to its
scenario with an empty log, then the job submitted by `promobulk submit` and followed in the
database until it ends; and how its figures are summed up.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.bench import profiling
from worker.bench.procfs import cpu_seconds, hwm_mb, load_average, tree_cpu_seconds
from worker.bench.scenarios import World, warmup_csv
from worker.bench.stack import UNLIMITED, Stack

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


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
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
        stack.forget_refusals()
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
            **cpu_delta(cpu_before, cpu_submitted),
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
        "cpu_seconds": cpu_delta(cpu_before, cpu_after),
        "postgres_rows": tables,
        "worker_child_peak_rss_mb": round(max(known), 1) if known else None,
        "worker_children_peak_rss_mb": [None if h is None else round(h, 1) for h in children_hwm],
        "worker_main_peak_rss_mb": None if main_hwm is None else round(main_hwm, 1),
        "load_average_before": load_before,
    }


def statement_costs(logged: list[tuple[float, str, str]], units: int, unit: str) -> dict[str, Any]:
    """Where Postgres spent its time for a run, by repository function, and per `unit`."""
    if not logged:
        return {"skipped": "needs the embedded Postgres (its log)"}
    found = profiling.statements(logged)
    found["note"] = (
        "server-side durations (log_min_duration_statement = 0; parse + bind + execute) per"
        " repository function; statement logging was on for this run only"
    )
    found[f"ms_per_{unit}"] = round(found["total_ms"] / units, 3) if units else None
    return found


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
