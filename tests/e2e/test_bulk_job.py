"""A mixed night of repricing through the real stack, judged by the simulator and an oracle."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.e2e.conftest import Stack
from tests.e2e.oracle import expect
from worker.sample import MISSING_LINE_ITEM_ID, sample_rows, write_csv
from worker.simulator.scenario import generate

pytestmark = pytest.mark.e2e


def _dec(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.0001"))


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
    submitted = stack.cli("submit", str(write_csv(rows, tmp_path / "night.csv")), "--json")
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    status = stack.wait_for_job(job_id)

    # Every SKU has exactly one final outcome, and the right one.
    with engine.connect() as conn:
        items = conn.execute(
            sa.text(
                "SELECT line_item_id, sku_id, status, error_kind, error_code, bid_before,"
                " bid_after, product_status_before, product_status_after"
                " FROM items WHERE job_id = :j"
            ),
            {"j": job_id},
        ).all()
    assert len(items) == len(rows) == status["total"]
    assert len({(i.line_item_id, i.sku_id) for i in items}) == len(rows)
    got = {(i.line_item_id, i.sku_id): (i.status, i.error_kind) for i in items}
    wrong = {k: (got[k], v) for k, v in expected.outcomes.items() if got[k] != v}
    assert not wrong, f"{len(wrong)} wrong outcomes, e.g. {list(wrong.items())[:5]}"
    refused = [i for i in items if i.error_kind == "validation"]
    assert all(i.error_code for i in refused)

    # The job's roll-up matches its items.
    assert status["status"] == "completed_with_failures"
    assert status["counts"] == dict(Counter(i.status for i in items))

    # Before and after values were recorded for changed SKUs.
    initial = {
        (li.id, p.sku): p for a in scenario.accounts for li in a.line_items for p in li.products
    }
    for i in items:
        if i.status == "succeeded" and (i.line_item_id, i.sku_id) in initial:
            product = initial[(i.line_item_id, i.sku_id)]
            assert i.product_status_before == product.status
            assert _dec(i.bid_before) == _dec(product.bidOverride)

    # The simulator's final state is exactly the expected one.
    state = stack.control.state()
    actual = {
        li["id"]: {p["sku"]: (_dec(p["bidOverride"]), p["status"]) for p in li["products"]}
        for account in state["accounts"]
        for li in account["line_items"]
    }
    want = {
        li: {sku: (_dec(bid), st) for sku, (bid, st) in products.items()}
        for li, products in expected.state.items()
    }
    assert actual == want

    # Calls: at most one read, one call per action kind, and one resend per refused call.
    log = stack.control.requests(limit=1_000_000, write_counts=False)["log"]
    calls = Counter(
        int(entry["path"].split("/line-items/")[1].split("/")[0])
        for entry in log
        if entry["endpoint"] != "token"
    )
    over = {li: (n, expected.max_calls(li)) for li, n in calls.items() if n > expected.max_calls(li)}
    assert not over, f"line items over their call budget: {over}"
    assert calls[MISSING_LINE_ITEM_ID] == 1
    print(
        f"\n{len(rows)} SKUs, {sum(calls.values())} API calls over {len(calls)} line items,"
        f" minimum possible {sum(1 + len(expected.sent_kinds.get(li, ())) for li in calls)}"
    )
