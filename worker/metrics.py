"""Every Prometheus metric of promobulk, and the two ways they are served.

Counters and histograms are recorded where things happen (the Criteo client, the limiter, the
runner). Worker children are prefork processes: with `PROMETHEUS_MULTIPROC_DIR` set (the
`promobulk worker` command sets and empties it when `PROMOBULK_WORKER_METRICS_PORT` is given),
each child writes its values to files there and the worker's main process serves them all with
`MultiProcessCollector`. Gauges of state (jobs and chunks by status, messages waiting in the
broker) are computed when the API's `/metrics` is scraped, from the database and the broker,
so they are right however many workers there are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("promobulk.metrics")

SKUS = Counter(
    "promobulk_skus",
    "SKUs given an outcome, by outcome and error kind (dry_run: what a dry run foresaw).",
    ["outcome", "error_kind", "dry_run"],
)
API_CALLS = Counter(
    "promobulk_api_calls",
    "HTTP requests sent to the Criteo API, by endpoint and HTTP status (or timeout/error).",
    ["endpoint", "status"],
)
RATE_LIMITED = Counter(
    "promobulk_api_rate_limited",
    "429 answers of the Criteo API, by endpoint.",
    ["endpoint"],
)
LIMITER_WAIT = Histogram(
    "promobulk_limiter_wait_seconds",
    "Time a call waited for its slot from the shared rate limiter.",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CHUNK_SECONDS = Histogram(
    "promobulk_chunk_duration_seconds",
    "Time from claiming a chunk to its end, by result (done, failed, cancelled, parked, ...).",
    ["result"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)


def api_call(endpoint: str, status: int | str) -> None:
    API_CALLS.labels(endpoint, str(status)).inc()
    if status == 429:
        RATE_LIMITED.labels(endpoint).inc()


def sku_outcome(outcome: str, error_kind: str | None, *, dry_run: bool) -> None:
    SKUS.labels(outcome, error_kind or "", "true" if dry_run else "false").inc()


class StateCollector(Collector):
    """Gauges computed at scrape time: jobs and chunks by status, and the broker's queue depth."""

    def __init__(
        self,
        counts: Callable[[], tuple[Mapping[str, int], Mapping[str, int]]],
        waiting: Callable[[], int] | None,
    ) -> None:
        self._counts = counts
        self._waiting = waiting

    def collect(self) -> Iterator[Metric]:
        jobs, chunks = self._counts()
        for name, doc, values in (
            ("promobulk_jobs", "Jobs by status.", jobs),
            ("promobulk_chunks", "Chunks (one per job and line item) by status.", chunks),
        ):
            family = GaugeMetricFamily(name, doc, labels=["status"])
            for status, count in sorted(values.items()):
                family.add_metric([status], count)
            yield family
        if self._waiting is None:
            return
        try:
            waiting = self._waiting()
        except Exception as exc:  # the broker's trouble must not cost the other metrics
            log.warning("queue depth unavailable: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily(
            "promobulk_queue_messages", "Messages waiting in the broker's queues.", value=waiting
        )


def state_registry(
    counts: Callable[[], tuple[Mapping[str, int], Mapping[str, int]]],
    waiting: Callable[[], int] | None,
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(counts, waiting))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def serve_worker_metrics(port: int) -> None:
    """In the worker's main process: serve what every child wrote, on a thread of its own."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        log.warning("PROMETHEUS_MULTIPROC_DIR is not set: the worker's metrics are not served")
        return
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, registry=registry)
    log.info("worker metrics on port %d", port)
