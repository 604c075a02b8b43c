"""Metrics, logs and retention of a real stack: a worker process serving its prefork children's
metrics, `promobulk api` serving the state gauges, both scraped over HTTP and compared with the
job and with the simulator's request log; the worker's JSON log lines; beat's retention run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.request import urlopen

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, until
from tests.e2e.conftest import Stack, item_rows
from tests.e2e.judge import counts_of
from worker.localstack import start_beat, start_worker, stop_process
from worker.sample import sample_rows, write_csv
from worker.simulator.scenario import DEFAULT_CLIENT_SECRET, generate

pytestmark = pytest.mark.e2e


def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a /metrics answer: (name, labels, value)."""
    with urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def answers(url: str) -> bool:
    try:
        with urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def total(samples: list[tuple[str, dict[str, str], float]], name: str, by: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for sample_name, labels, value in samples:
        if sample_name == name and value:
            found[labels.get(by, "")] += int(value)
    return found


def test_metrics_of_workers_and_api_match_the_job_and_the_simulator(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    scenario = generate(seed=41, line_items=8, skus_per_line_item=30)
    stack.control.load(scenario)
    rows = sample_rows(scenario, seed=41)
    metrics_port, api_port = free_port(), free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"a previous run's file")
    worker_log = tmp_path / "worker.log"
    env = {
        **stack.env,
        "PROMOBULK_WORKER_METRICS_PORT": str(metrics_port),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "PROMOBULK_LOG_LEVEL": "debug",
        # Retention runs once beat is started, at the end: anything finished 2 s ago goes.
        "PROMOBULK_RETENTION_DAYS": str(2 / 86400),
        "PROMOBULK_RETENTION_INTERVAL_SECONDS": "1",
    }
    worker = start_worker(env, concurrency=3, log=worker_log)
    stack.processes.append(worker)
    api = subprocess.Popen(
        [str(Path(sys.executable).parent / "promobulk"), "api", "--port", str(api_port)],
        env=env,
        start_new_session=True,
    )
    stack.processes.append(api)
    worker_url = f"http://127.0.0.1:{metrics_port}/metrics"
    api_url = f"http://127.0.0.1:{api_port}"
    until(lambda: answers(worker_url), 60, "the worker's metrics")
    until(lambda: answers(f"{api_url}/healthz"), 60, "the API")

    job_id = stack.submit(write_csv(rows, tmp_path / "night.csv"))
    status = stack.wait_for_job(job_id)
    assert status["status"] == "completed_with_failures"
    items = item_rows(engine, job_id)

    worker_samples = scrape(worker_url)
    real = [s for s in worker_samples if s[1].get("dry_run", "false") == "false"]
    # SKUs by outcome and by error kind: the job's own counts.
    assert dict(total(real, "promobulk_skus_total", "outcome")) == status["counts"]
    assert status["counts"] == counts_of(items)
    kinds = Counter(i.error_kind for i in items if i.status == "failed")
    failed = [s for s in real if s[1].get("outcome") == "failed"]
    assert dict(total(failed, "promobulk_skus_total", "error_kind")) == dict(kinds)
    # API calls by endpoint and status: what the simulator received.
    seen = stack.control.requests()["by_endpoint"]
    calls = {
        (labels["endpoint"], labels["status"]): int(value)
        for name, labels, value in worker_samples
        if name == "promobulk_api_calls_total" and value
    }
    assert calls == {
        (endpoint, str(code)): n for endpoint, codes in seen.items() for code, n in codes.items()
    }
    assert sum(total(worker_samples, "promobulk_api_rate_limited_total", "endpoint").values()) == (
        sum(n for (_, code), n in calls.items() if code == "429")
    )
    # One limiter wait per request sent, one latency per chunk.
    waits = total(worker_samples, "promobulk_limiter_wait_seconds_count", "")
    assert waits[""] == sum(calls.values())
    chunks = len({r["line_item_id"] for r in rows})
    assert total(worker_samples, "promobulk_chunk_duration_seconds_count", "result") == {
        "done": chunks
    }

    # The API: jobs and chunks by status, from the database; the broker's queues are empty.
    api_samples = scrape(f"{api_url}/metrics")
    with engine.connect() as conn:
        jobs_by_status = {
            r.status: r.n
            for r in conn.execute(sa.text("SELECT status, count(*) AS n FROM jobs GROUP BY 1"))
        }
        chunks_by_status = {
            r.status: r.n
            for r in conn.execute(sa.text("SELECT status, count(*) AS n FROM chunks GROUP BY 1"))
        }
    assert total(api_samples, "promobulk_jobs", "status") == jobs_by_status
    assert total(api_samples, "promobulk_chunks", "status") == chunks_by_status
    assert ("promobulk_queue_messages", {}, 0.0) in api_samples

    # The worker's log: JSON lines; a chunk's lines carry its ids; no secret.
    log_text = worker_log.read_text()
    assert DEFAULT_CLIENT_SECRET not in log_text
    records = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    assert any(r["logger"].startswith("celery") for r in records)
    runner = [r for r in records if r["logger"] == "promobulk.runner"]
    assert {r["job_id"] for r in runner} == {job_id}
    assert {r["line_item_id"] for r in runner} == {int(r["line_item_id"]) for r in rows}
    ends = [r for r in runner if r["event"] == f"chunk {r['chunk_id']} done"]
    assert len(ends) == chunks
    # The line item that does not exist: its warning too carries the chunk's ids.
    assert any("failed for good" in r["event"] for r in runner)

    # Retention: beat schedules the prune; the job keeps its row and counts, loses its items.
    stack.processes.append(start_beat(env, tmp_path / "beat-schedule"))
    until(lambda: not item_rows(engine, job_id), 60, "the job's items to be pruned")
    assert stack.status(job_id)["counts"] == status["counts"]
    with engine.connect() as conn:
        pruned_at = conn.execute(
            sa.text("SELECT items_pruned_at FROM jobs WHERE id = :j"), {"j": job_id}
        ).scalar_one()
    assert pruned_at is not None
    stop_process(api)
