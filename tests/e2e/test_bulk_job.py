"""A mixed night of repricing through the real stack, judged by the simulator and an oracle."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.e2e.conftest import Stack, item_rows
from tests.e2e.judge import (
    assert_outcomes,
    assert_state,
    calls_per_line_item,
    counts_of,
    dec,
)
from tests.e2e.oracle import expect
from worker.sample import MISSING_LINE_ITEM_ID, sample_rows, write_csv
from worker.simulator.scenario import generate

pytestmark = pytest.mark.e2e


def test_a_mixed_job_ends_with_the_right_outcome_for_every_sku(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    scenario = generate(seed=11, line_items=60, skus_per_line_item=120)
    stack.control.load(scenario)
    rows = sample_rows(scenario, seed=11)
    assert len(rows) >= 5000
    assert {r["action"] for r in rows} == {"set_bid", "add", "remove", "pause", "unpause"}
    expected = expect(scenario, rows)
    assert Counter(kind for _, kind in expected.outcomes.values())["validation"] >= 20

    stack.start_worker(concurrency=2)
    job_id = stack.submit(write_csv(rows, tmp_path / "night.csv"))
    status = stack.wait_for_job(job_id)

    items = item_rows(engine, job_id)
    assert_outcomes(items, expected)
    assert all(i.error_code for i in items if i.error_kind == "validation")
    assert status["status"] == "completed_with_failures"
    assert status["total"] == len(rows)
    assert status["counts"] == counts_of(items)

    # Before and after values were recorded for changed SKUs.
    initial = {
        (li.id, p.sku): p for a in scenario.accounts for li in a.line_items for p in li.products
    }
    for i in items:
        if i.status == "succeeded" and (i.line_item_id, i.sku_id) in initial:
            product = initial[(i.line_item_id, i.sku_id)]
            assert i.product_status_before == product.status
            assert dec(i.bid_before) == dec(product.bidOverride)

    assert_state(stack.control, expected)

    # Calls: at most one read, one call per action kind, and one resend per refused call.
    calls = calls_per_line_item(stack.control)
    over = {
        li: (n, expected.max_calls(li)) for li, n in calls.items() if n > expected.max_calls(li)
    }
    assert not over, f"line items over their call budget: {over}"
    assert calls[MISSING_LINE_ITEM_ID] == 1
    minimum = sum(1 + len(expected.sent_kinds.get(li, ())) for li in calls)
    print(
        f"\n{len(rows)} SKUs: {sum(calls.values())} API calls over {len(calls)} line items,"
        f" minimum {minimum}"
    )
