"""The sweep needs no beat: real worker processes sweep in turn, so a lost queue and parked chunks
still finish, and two workers never sweep at the same moment (issue 13, item 7)."""

from __future__ import annotations

import itertools
import signal
import time
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from tests.conftest import until
from tests.e2e.conftest import Stack
from tests.e2e.oracle import expect
from tests.e2e.test_crash_safety import judge
from worker.health import SweepRun, sweep_runs
from worker.sample import sample_rows, write_csv
from worker.simulator.scenario import generate

pytestmark = pytest.mark.e2e

# What kombu's Redis transport keeps: the queues, and the messages delivered but not acknowledged.
BROKER_KEYS = ("promobulk.high", "promobulk.normal", "unacked", "unacked_index")


def test_without_beat_a_flushed_queue_and_parked_chunks_still_finish(
    stack: Stack, engine: sa.Engine, redis_url: str, tmp_path: Path
) -> None:
    scenario = generate(seed=91, line_items=40, skus_per_line_item=30)
    stack.control.load(scenario)
    stack.set_rate(1500)
    rows = sample_rows(scenario, seed=91)
    expected = expect(scenario, rows)
    stack.env["CRITEO_RETRY_MAX_ATTEMPTS"] = "1"  # a 503 parks the chunk at once
    # Transient failures park chunks; nothing but a sweep sends a parked chunk again.
    stack.control.configure(faults={"append": {"p_503": 0.5}})
    job_id = stack.submit(write_csv(rows, tmp_path / "job.csv"))
    client = redis.Redis.from_url(redis_url)
    lost = client.llen("promobulk.normal")
    client.delete(*BROKER_KEYS)  # every message of the job is gone before a worker sees one
    client.close()
    assert lost == stack.status(job_id)["chunks"]["queued"]
    for _ in range(2):
        stack.start_worker(concurrency=1)  # and no beat
    stack.wait_for_progress(job_id, done=len(rows) // 4)
    stack.control.configure(faults={"append": {"p_503": 0.0}})
    status = judge(stack, engine, job_id, expected)
    with engine.connect() as conn:
        parked = conn.execute(
            sa.text("SELECT count(*) FROM chunks WHERE job_id = :j AND attempts > 1"),
            {"j": job_id},
        ).scalar_one()
    assert parked > 0, "no chunk was parked: the test proved nothing about parked chunks"
    print(f"\n{lost} messages flushed, {parked} chunks parked; finished {status['status']}")


def _overlaps(runs: list[SweepRun]) -> list[tuple[SweepRun, SweepRun]]:
    ordered = sorted(runs, key=lambda r: r.started)
    return [(a, b) for a, b in itertools.pairwise(ordered) if b.started < a.ended]


def test_two_workers_never_sweep_at_once_and_either_takes_over(
    stack: Stack, redis_url: str, tmp_path: Path
) -> None:
    # Sweeps far slower than the interval: 1,500 chunks no worker consumes are sent again by
    # every sweep, and a turn comes every 50 ms. Without the lock, sweeps would overlap.
    stack.env.update(
        PROMOBULK_SWEEP_INTERVAL_SECONDS="0.05", PROMOBULK_REDISPATCH_AFTER_SECONDS="0.05"
    )
    rows = [
        {"line_item_id": str(10_000 + n), "sku_id": "s", "action": "pause", "bid_override": ""}
        for n in range(1500)
    ]
    idle_job = stack.submit(write_csv(rows, tmp_path / "idle.csv"))
    extra = ("-Q", "promobulk.nobody")  # they sweep, but take no chunk
    first = stack.start_worker(concurrency=1, extra_args=extra)
    second = stack.start_worker(concurrency=1, extra_args=extra)
    client = redis.Redis.from_url(redis_url)
    try:

        def swept_by_both() -> list[SweepRun] | None:
            runs = sweep_runs(client)
            return runs if len({r.by for r in runs}) == 2 and len(runs) >= 12 else None

        runs = until(swept_by_both, timeout=90, what="sweeps by both workers")
        assert not _overlaps(runs), _overlaps(runs)[:3]
        slow = max(r.ended - r.started for r in runs)
        assert slow > 0.05, f"sweeps took at most {slow:.3f}s: none was slower than a turn"

        # One stops (its last sweep ends and its lock is released): the other goes on alone.
        stopping = runs[0].by
        worker = first if str(first.pid) == stopping.rsplit(":", 1)[1] else second
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
        stopped_at = time.time()

        def others_after() -> list[SweepRun] | None:
            later = [r for r in sweep_runs(client) if r.started > stopped_at]
            return later if len(later) >= 5 else None

        later = until(others_after, timeout=30, what="sweeps after one worker stopped")
        assert {r.by for r in later} == {r.by for r in runs} - {stopping}
        assert not _overlaps(sweep_runs(client))
    finally:
        client.close()
        stack.cli("cancel", str(idle_job), check=True)  # no later test meets its chunks
