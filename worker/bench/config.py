"""How big each section is: `full` (the issue's sizes), `quick` (< 2 minutes), `tiny` (the
smoke test's). Every size can be overridden from the command line."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Sizes:
    preset: str
    skus_per_line_item: int
    #: Overnight repricing: line items, the wanted lower bound (sets the rate limit), latency.
    overnight_line_items: int
    lower_bound_seconds: float
    latency_ms: int
    overnight_concurrency: int | None  # worker processes; None: enough to saturate the limit
    #: Engine overhead: line items of the job, worker processes to try, the profiled job.
    engine_line_items: int
    engine_workers: tuple[int, ...]
    profile_line_items: int
    #: Ingestion and memory: job sizes in line items (SKUs = x skus_per_line_item).
    scale_line_items: tuple[int, ...]
    scale_workers: int
    #: Peers: line items each peer runs (a sample; the rest is extrapolated).
    docs_line_items: int
    sdk_line_items: int
    #: Economy: line items of the night run under each variant, line items of 1,500 products
    #: for the variants that need them, and the variants to run (None: all).
    economy_line_items: int
    economy_large_line_items: int
    economy_variants: tuple[str, ...] | None = None

    @property
    def scenario_line_items(self) -> int:
        return max(
            self.overnight_line_items,
            self.engine_line_items,
            self.profile_line_items,
            *self.scale_line_items,
        )

    def with_overrides(self, **changes: Any) -> Sizes:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


PRESETS = {
    "full": Sizes(
        preset="full",
        skus_per_line_item=100,
        overnight_line_items=2000,
        lower_bound_seconds=210,
        latency_ms=100,
        overnight_concurrency=None,
        engine_line_items=2000,
        engine_workers=(1, 2),
        profile_line_items=500,
        scale_line_items=(1000, 10000),
        scale_workers=2,
        docs_line_items=5,
        sdk_line_items=20,
        economy_line_items=100,
        economy_large_line_items=5,
    ),
    "quick": Sizes(
        preset="quick",
        skus_per_line_item=100,
        overnight_line_items=100,
        lower_bound_seconds=25,
        latency_ms=100,
        overnight_concurrency=None,
        engine_line_items=100,
        engine_workers=(1, 2),
        profile_line_items=50,
        scale_line_items=(50, 500),
        scale_workers=2,
        docs_line_items=1,
        sdk_line_items=5,
        economy_line_items=20,
        economy_large_line_items=2,
    ),
    "tiny": Sizes(
        preset="tiny",
        skus_per_line_item=20,
        overnight_line_items=10,
        lower_bound_seconds=4,
        latency_ms=100,
        overnight_concurrency=None,
        engine_line_items=10,
        engine_workers=(1, 2),
        profile_line_items=10,
        scale_line_items=(5, 25),
        scale_workers=2,
        docs_line_items=1,
        sdk_line_items=2,
        economy_line_items=6,
        economy_large_line_items=1,
        economy_variants=(
            "simulator default (refusals named in 400s by path and quoted SKU)",
            "unnamed in 400s, counted by none",
            "ids cap 50",
            "all at once: ids cap 50, limit above 1000 refused, no meta, 204s, unnamed 400s",
        ),
    ),
}


def rate_for(min_calls: int, lower_bound_seconds: float) -> int:
    """The calls-a-minute limit that makes `min_calls` take `lower_bound_seconds` at best."""
    return max(1, math.ceil(min_calls * 60 / lower_bound_seconds))


def concurrency_for(rate_per_minute: int, latency_ms: int) -> int:
    """Worker processes to keep the limit busy: each runs its chunk's calls one after another
    (latency plus ~50 ms of database work per call), with a 2x margin."""
    per_process = 1 / (latency_ms / 1000 + 0.05)
    return max(2, min(24, math.ceil(rate_per_minute / 60 / per_process * 2)))
