"""5. Economy: one night against every way the API may behave where Criteo publishes nothing.

Each variant switches the simulator's configuration, forgets what the workers learned, and runs
the same job (new bids, pauses, unpauses, removals, additions, and SKUs the API refuses) through
one `promobulk worker`; the simulator's log is the judge of the calls, set against the fewest a
client knowing the API's behaviour (not which SKUs it refuses) could make
(`worker.bench.minimum`), and its state against the night's desired state.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.bench.config import Sizes
from worker.bench.minimum import Api, fewest_calls
from worker.bench.scenarios import (
    World,
    build_world,
    desired_state,
    needs,
    with_refusals,
    write_job_csv,
    wrong_skus,
)
from worker.bench.stack import UNLIMITED, Stack, forget_learned
from worker.simulator.shapes import NAMINGS

#: Products per line item of the variants with the largest line items: the night's additions
#: (one in 50) take it to 1,499, under the 1,500 the simulator is set to allow.
LARGE = 1470


@dataclass(frozen=True)
class Variant:
    name: str
    config: dict[str, Any]
    api: Api
    large: bool = False
    """Runs on line items of the 1,500 products suggested since 2025-07."""


@dataclass(frozen=True)
class _Night:
    """A world's job: its CSV, its SKUs, and the state the simulator must show after it."""

    world: World
    csv: Path
    skus: int
    wanted: dict[tuple[int, str], Any]

    def minimum(self, api: Api) -> int:
        return sum(
            fewest_calls(api, needs(ref, with_refusals(ref, self.world.seed)))
            for ref in self.world.job(self.world.measurable)
        )


def _night(stack: Stack, world: World) -> _Night:
    refs = world.job(world.measurable)
    path = stack.workdir / f"economy-{world.seed}.csv"
    skus = write_job_csv(refs, world.seed, path, with_refusals)
    return _Night(world, path, skus, desired_state(refs, world.seed, with_refusals))


def variants() -> list[Variant]:
    """The default, then each behaviour alone, then the unpublished limits all at once."""
    b, d = Api(mode="b"), Api(mode="d")
    return [
        Variant("simulator default (refusals named in 400s by path and quoted SKU)", {}, Api()),
        *(Variant(f"named in 400s: {shape}", {"naming": shape}, Api()) for shape in NAMINGS[1:]),
        Variant("named in 200s with warnings", {"validation_mode": "c"}, Api(mode="c")),
        *(
            Variant(
                f"unnamed in 400s, counted by {style}",
                {"validation_mode": "b", "anonymous_count": style},
                b,
            )
            for style in ("detail", "entries", "none")
        ),
        Variant("unnamed in 200s with warnings", {"validation_mode": "d"}, d),
        Variant("ids cap 50", {"ids_cap": 50}, Api(ids_cap=50)),
        Variant("pages of 100", {"page_cap": 100}, Api(page=100)),
        Variant(
            "pages of 100, meta.limit echoing the asked limit",
            {"page_cap": 100, "page_meta": "asked-limit"},
            Api(page=100),
        ),
        Variant("no meta.count", {"page_meta": "no-count"}, Api(counted=False)),
        Variant(
            "no meta at all, pages of 100",
            {"page_cap": 100, "page_meta": "none"},
            Api(page=100, counted=False),
        ),
        Variant("a limit above 1000 refused", {"max_page_limit": 1000}, Api(page=1000)),
        Variant("bodies above 4 KB refused (413)", {"max_body_bytes": 4096}, Api(max_bytes=4096)),
        Variant("appends answered 204", {"write_success": "204"}, Api(proves_bids=False)),
        Variant("line items of 1,500 products", {"products_cap": 1500}, Api(), large=True),
        Variant(
            "all at once: ids cap 50, limit above 1000 refused, no meta, 204s, unnamed 400s",
            {
                "ids_cap": 50,
                "max_page_limit": 1000,
                "page_meta": "none",
                "write_success": "204",
                "validation_mode": "b",
                "anonymous_count": "none",
                "products_cap": 1500,
            },
            Api(mode="b", page=1000, counted=False, ids_cap=50, proves_bids=False),
            large=True,
        ),
    ]


def run(stack: Stack, seed: int, sizes: Sizes) -> dict[str, Any]:
    chosen = [
        v for v in variants() if sizes.economy_variants is None or v.name in sizes.economy_variants
    ]
    nights = {
        False: _night(
            stack, build_world(seed + 101, sizes.economy_line_items, sizes.skus_per_line_item)
        ),
        True: _night(stack, build_world(seed + 102, sizes.economy_large_line_items, LARGE)),
    }
    env = stack.env(UNLIMITED)
    stack.clear_limiter()
    worker = stack.start_worker(env, 2, "economy")
    results = []
    try:
        for variant in chosen:
            night = nights[variant.large]
            stack.sim.control.load(night.world.scenario)
            stack.sim.reset(rate_limit=UNLIMITED, latency_ms=0)
            stack.sim.control.configure(**variant.config)
            forget_learned(stack.redis_url)
            stack.forget_refusals()
            started = time.monotonic()
            job_id, _ = stack.submit(night.csv, env)
            status = stack.wait_job(job_id, timeout=600)
            calls = [e for e in stack.sim.log() if e["endpoint"] != "token"]
            minimum = night.minimum(variant.api)
            results.append(
                {
                    "variant": variant.name,
                    "config": variant.config,
                    "line_items": night.world.measurable,
                    "skus": night.skus,
                    "calls": len(calls),
                    "minimum": minimum,
                    "ratio": round(len(calls) / minimum, 3),
                    "by_status": dict(sorted(Counter(str(e["status"]) for e in calls).items())),
                    "counts": status["counts"],
                    "skus_not_in_desired_state": wrong_skus(
                        night.wanted, stack.sim.control.state()
                    ),
                    "seconds": round(time.monotonic() - started, 1),
                }
            )
    finally:
        stack.stop_worker(worker)
    return {
        "line_items": sizes.economy_line_items,
        "large_line_items": sizes.economy_large_line_items,
        "skus_per_line_item": sizes.skus_per_line_item,
        "variants": results,
        "note": (
            "minimum: the fewest calls a client knowing how the API behaves, but not which SKUs"
            " it refuses, could make (worker/bench/minimum.py); for unnamed refusals it is the"
            " information bound ceil(log2 C(n, d)), which answers giving counts can beat"
        ),
    }
