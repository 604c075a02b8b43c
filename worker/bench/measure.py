"""The sections of the benchmark that process jobs against the simulator: overnight repricing
at the rate limit, engine overhead without one, and the peers on the same simulator. Section 3,
ingestion and memory, is `worker.bench.ingestion`; each job is run by `worker.bench.jobrun`.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from worker.bench import peers as peer_loops
from worker.bench import profiling
from worker.bench.config import Sizes, concurrency_for, rate_for
from worker.bench.jobrun import REPEATS, log_stats, run_job, spread, statement_costs
from worker.bench.scenarios import (
    Economy,
    World,
    desired_state,
    economy,
    rows_for,
    write_job_csv,
    wrong_skus,
)
from worker.bench.stack import UNLIMITED, Stack

REAL_LIMIT = 250  # the API's own calls a minute per application
API_VERSION = "2026-07"


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
        "postgres_statements": statement_costs(logged[0] if logged else [], run["chunks"], "chunk"),
        "line_items": len(refs),
        "skus": skus,
        "tool": "py-spy record --nonblocking --rate 200 on the worker's pool process",
        "skus_per_second_processing": run["skus_per_second_processing"],
        "cpu_seconds": run["cpu_seconds"],
        **summary,
    }


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


def _state_of(stack: Stack, refs: Sequence[Any]) -> dict[str, Any]:
    """The simulator's state of a few line items, in the shape of `/_sim/state`."""
    line_items = []
    for ref in refs:
        for account in stack.sim.control.state(ref.line_item.id)["accounts"]:
            line_items.extend(account["line_items"])
    return {"accounts": [{"line_items": line_items}]}
