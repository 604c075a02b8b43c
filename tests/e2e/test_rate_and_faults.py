"""The rate limit, transient faults, and bids the API accepted but did not apply, end to end
(the ways of reporting refused SKUs are in `test_bulk_job`).

Real worker processes against the simulator; every verdict comes from the simulator's request
log and state, and from an oracle of the API's rules.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.e2e.conftest import Stack, item_rows
from tests.e2e.judge import assert_outcomes, assert_state, calls_per_line_item, dec
from tests.e2e.oracle import expect
from worker.sample import sample_rows, write_csv
from worker.simulator.scenario import Scenario, generate

pytestmark = pytest.mark.e2e


def repricing_rows(scenario: Scenario, per_line_item: int) -> list[dict[str, str]]:
    """Bid changes only (one read and one append per line item), within the guardrails."""
    rows = []
    for account in scenario.accounts:
        min_bid = {c.sku: c.minBid for c in account.catalog}
        for li in account.line_items:
            if li.kind != "auction":
                continue
            for p in li.products[:per_line_item]:
                bid = (p.bidOverride * Decimal("1.2")) if p.bidOverride else min_bid[p.sku]
                bid = max(bid, min_bid[p.sku]).quantize(Decimal("0.01")) + Decimal("0.01")
                rows.append(
                    {
                        "line_item_id": str(li.id),
                        "sku_id": p.sku,
                        "action": "set_bid",
                        "bid_override": str(bid),
                        "account_id": account.id,
                    }
                )
    return rows


def api_log(stack: Stack) -> list[dict[str, Any]]:
    entries = stack.control.requests(limit=10_000_000, write_counts=False)["log"]
    return [e for e in entries if e["endpoint"] != "token"]


def test_two_workers_use_the_whole_limit_without_a_single_429(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    scenario = generate(seed=101, line_items=330, skus_per_line_item=10, preferred_deals_every=0)
    stack.control.load(scenario)
    stack.set_rate(600)
    rows = repricing_rows(scenario, per_line_item=5)
    expected = expect(scenario, rows)
    stack.start_worker(concurrency=4)
    stack.start_worker(concurrency=4)
    job_id = stack.submit(write_csv(rows, tmp_path / "rates.csv"))
    stack.wait_for_job(job_id, timeout=300)
    assert_outcomes(item_rows(engine, job_id), expected)
    log = api_log(stack)
    statuses = Counter(str(e["status"]) for e in log)
    assert statuses["429"] == 0
    times = sorted(e["t"] for e in log)
    achieved = (len(times) - 1) / (times[-1] - times[0]) * 60
    print(
        f"\n{len(times)} calls over {len(calls_per_line_item(stack.control))} line items:"
        f" {achieved:.0f}/min against a limit of 600 ({achieved / 600:.1%}), 0 x 429"
    )
    assert len(calls_per_line_item(stack.control)) >= 300
    assert achieved >= 0.95 * 600


def test_a_real_limit_20_percent_below_the_configured_one(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    scenario = generate(seed=102, line_items=160, skus_per_line_item=10, preferred_deals_every=0)
    stack.control.load(scenario)
    stack.set_rate(480, configured=600)
    rows = repricing_rows(scenario, per_line_item=5)
    expected = expect(scenario, rows)
    stack.start_worker(concurrency=4)
    stack.start_worker(concurrency=4)
    job_id = stack.submit(write_csv(rows, tmp_path / "lower.csv"))
    stack.wait_for_job(job_id, timeout=300)
    assert_outcomes(item_rows(engine, job_id), expected)
    assert_state(stack.control, expected)
    log = api_log(stack)
    too_many = sum(1 for e in log if e["status"] == 429)
    times = sorted(e["t"] for e in log if e["status"] != 429)
    achieved = (len(times) - 1) / (times[-1] - times[0]) * 60
    print(
        f"\nlimit 480 (configured 600): {len(log)} calls, {too_many} x 429,"
        f" {achieved:.0f} accepted calls/min ({achieved / 480:.1%} of the real limit)"
    )


def test_transient_faults_and_early_token_expiry(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    scenario = generate(seed=103, line_items=40, skus_per_line_item=40)
    stack.control.load(scenario)
    faults = {
        "p_500": 0.04,
        "p_502": 0.03,
        "p_503": 0.03,
        "p_hang": 0.05,
        "p_reset": 0.02,
        "p_token_expired": 0.02,
    }
    stack.control.configure(
        hang_seconds=30,
        faults={endpoint: faults for endpoint in ("get", "append", "delete", "pause", "unpause")},
    )
    stack.env["CRITEO_REQUEST_TIMEOUT"] = "1.5"
    stack.env["CRITEO_RETRY_BASE_DELAY"] = "0.1"
    stack.env["CRITEO_RETRY_MAX_DELAY"] = "1"
    stack.env["CRITEO_RETRY_MAX_ATTEMPTS"] = "8"
    rows = sample_rows(scenario, seed=103)
    expected = expect(scenario, rows)
    stack.start_beat()
    stack.start_worker(concurrency=4)
    job_id = stack.submit(write_csv(rows, tmp_path / "faults.csv"))
    stack.wait_for_job(job_id, timeout=300)
    assert_outcomes(item_rows(engine, job_id), expected)
    assert_state(stack.control, expected)

    log = stack.control.requests(limit=10_000_000, write_counts=False)["log"]
    faults_seen = Counter(str(e["status"]) for e in log if e["status"] not in (200, 204, 400, 404))
    writes: dict[tuple[str, str], Counter[str]] = {}
    for e in log:
        if e["endpoint"] in ("append", "delete", "pause", "unpause"):
            li = e["path"].split("/line-items/")[1].split("/")[0]
            writes.setdefault((li, e["endpoint"]), Counter())[str(e["status"])] += 1
    # A write that succeeded is never sent again: every extra request answered a fault or a 400.
    repeated = {k: c for k, c in writes.items() if c["200"] + c["204"] > 1}
    assert not repeated, f"successful writes repeated: {list(repeated.items())[:3]}"
    print(f"\nfaults answered: {dict(faults_seen)}; {len(log)} requests in all")
    assert sum(faults_seen.values()) >= 20


def test_a_bid_the_api_accepted_but_did_not_apply_is_caught(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    scenario = generate(seed=105, line_items=20, skus_per_line_item=20, preferred_deals_every=0)
    stack.control.load(scenario)
    stack.control.configure(faults={"append": {"p_bid_ignored": 0.5}})
    rows = repricing_rows(scenario, per_line_item=8)
    stack.start_worker(concurrency=2)
    job_id = stack.submit(write_csv(rows, tmp_path / "ignored.csv"))
    stack.wait_for_job(job_id)
    items = item_rows(engine, job_id)
    desired = {(int(r["line_item_id"]), r["sku_id"]): dec(r["bid_override"]) for r in rows}
    outcomes = Counter((i.status, i.error_kind) for i in items)
    for i in items:
        shown = dec(stack.control.products(i.line_item_id)[i.sku_id]["bidOverride"])
        if i.status == "succeeded":
            assert shown == desired[(i.line_item_id, i.sku_id)]
        else:
            assert (i.status, i.error_kind) == ("failed", "bid_not_applied")
            assert shown != desired[(i.line_item_id, i.sku_id)]
            assert dec(i.bid_after) == shown
    assert outcomes[("failed", "bid_not_applied")] > 0
    assert outcomes[("succeeded", None)] > 0


def test_a_line_item_of_an_account_without_consent_fails_forbidden_without_retries(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    scenario = generate(seed=106, line_items=8, skus_per_line_item=15)
    refused_account = scenario.accounts[1]
    for client in scenario.clients:
        client.accounts = [a for a in client.accounts if a != refused_account.id]
    stack.control.load(scenario)
    rows = sample_rows(scenario, seed=106, with_refusals=False)
    expected = expect(scenario, rows)
    forbidden = {li.id for li in refused_account.line_items}
    for key in expected.outcomes:
        if key[0] in forbidden:
            expected.outcomes[key] = ("failed", "forbidden")
    stack.start_worker()
    job_id = stack.submit(write_csv(rows, tmp_path / "consent.csv"))
    stack.wait_for_job(job_id)
    items = item_rows(engine, job_id)
    assert_outcomes(items, expected)
    calls = calls_per_line_item(stack.control)
    assert all(calls[li] == 1 for li in forbidden), "a 403 must not be retried"
    assert all(i.error_code for i in items if i.error_kind == "forbidden")


def test_a_chunk_that_keeps_failing_ends_transient_exhausted_instead_of_looping(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    scenario = generate(seed=107, line_items=3, skus_per_line_item=10, preferred_deals_every=0)
    stack.control.load(scenario)
    stack.control.configure(faults={"get": {"p_503": 1.0}})
    stack.env.update(
        PROMOBULK_CHUNK_MAX_ATTEMPTS="2",
        CRITEO_RETRY_MAX_ATTEMPTS="2",
        CRITEO_RETRY_BASE_DELAY="0.05",
    )
    rows = repricing_rows(scenario, per_line_item=4)
    stack.start_beat()
    stack.start_worker()
    job_id = stack.submit(write_csv(rows, tmp_path / "down.csv"))
    status = stack.wait_for_job(job_id, timeout=120)
    assert status["status"] == "failed"
    items = item_rows(engine, job_id)
    assert {(i.status, i.error_kind) for i in items} == {("failed", "transient_exhausted")}
    with engine.connect() as conn:
        chunks = conn.execute(
            sa.text("SELECT status, attempts, last_error FROM chunks WHERE job_id = :j"),
            {"j": job_id},
        ).all()
    assert {(c.status, c.attempts) for c in chunks} == {("failed", 3)}
    assert all("503" in (c.last_error or "") for c in chunks)
    # Two attempts of the chunk, each spending its two tries of the read: four reads a line item.
    calls = calls_per_line_item(stack.control)
    assert sorted(calls.values()) == [4, 4, 4]
