"""Judging a finished job: our database for outcomes, the simulator for what reached the API."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from tests.e2e.oracle import Expectation
from worker.simulator.control import SimulatorControl


def dec(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.0001"))


def assert_outcomes(items: list[Any], expected: Expectation) -> None:
    """Every SKU has exactly one final outcome, and it is the expected one."""
    keys = [(i.line_item_id, i.sku_id) for i in items]
    assert len(keys) == len(set(keys)) == len(expected.outcomes)
    pending = [k for k, i in zip(keys, items, strict=True) if i.status == "pending"]
    assert not pending, f"{len(pending)} SKUs without an outcome, e.g. {pending[:3]}"
    got = {(i.line_item_id, i.sku_id): (i.status, i.error_kind) for i in items}
    wrong = {k: (got[k], v) for k, v in expected.outcomes.items() if got[k] != v}
    assert not wrong, f"{len(wrong)} wrong outcomes (got, expected), e.g. {list(wrong.items())[:5]}"


def assert_state(control: SimulatorControl, expected: Expectation) -> None:
    """The simulator's line items are exactly the expected ones."""
    state = control.state()
    actual = {
        li["id"]: {p["sku"]: (dec(p["bidOverride"]), p["status"]) for p in li["products"]}
        for account in state["accounts"]
        for li in account["line_items"]
    }
    want = {
        li: {sku: (dec(bid), st) for sku, (bid, st) in products.items()}
        for li, products in expected.state.items()
    }
    diff = {li: (actual.get(li), want[li]) for li in want if actual.get(li) != want[li]}
    assert not diff, f"{len(diff)} line items differ, e.g. {list(diff.items())[:1]}"


def calls_per_line_item(control: SimulatorControl) -> Counter[int]:
    log = control.requests(limit=10_000_000, write_counts=False)["log"]
    return Counter(
        int(entry["path"].split("/line-items/")[1].split("/")[0])
        for entry in log
        if entry["endpoint"] != "token"
    )


def counts_of(items: list[Any]) -> dict[str, int]:
    return dict(Counter(i.status for i in items))
