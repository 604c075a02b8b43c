"""Dry-run and outcome sentences, spreadsheet-safe cells, and the rows of derived jobs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from worker.domain.derive import NotRevertible, ParentItem, retry_row, revert_row
from worker.domain.describe import describe
from worker.domain.enums import Action, ItemStatus
from worker.domain.money import format_bid
from worker.domain.planner import Snapshot, WantedItem, expected_after
from worker.domain.spreadsheet import escape_cell, unescape_cell

D = Decimal
ACTIVE = Snapshot(D("0.5000"), "active")


def test_a_dry_run_says_what_would_change_naming_only_what_differs() -> None:
    bid = WantedItem(1, "a", Action.SET_BID, D("0.75"))
    after = expected_after(bid, ACTIVE)
    assert describe(ItemStatus.SUCCEEDED, ACTIVE, after, dry_run=True) == (
        "would change from bid 0.50 to bid 0.75"
    )
    pause = expected_after(WantedItem(2, "a", Action.PAUSE, None), ACTIVE)
    assert describe(ItemStatus.SUCCEEDED, ACTIVE, pause, dry_run=True) == (
        "would change from active to paused"
    )
    added = expected_after(WantedItem(3, "n", Action.ADD, D("0.35")), None)
    assert describe(ItemStatus.SUCCEEDED, None, added, dry_run=True) == (
        "would change from not on the line item to active, bid 0.35"
    )
    assert describe(ItemStatus.SUCCEEDED, ACTIVE, None) == (
        "changed from active, bid 0.50 to not on the line item"
    )


def test_unchanged_and_failures_read_as_such() -> None:
    assert describe(ItemStatus.UNCHANGED, ACTIVE, ACTIVE, dry_run=True) == (
        "unchanged: already active, bid 0.50"
    )
    text = describe(
        ItemStatus.FAILED,
        ACTIVE,
        ACTIVE,
        error_kind="guardrail",
        error_message="bid change from 0.5 to 9 is 18.00 times",
        dry_run=True,
    )
    assert text == "would fail: guardrail: bid change from 0.5 to 9 is 18.00 times"
    assert describe(ItemStatus.FAILED, None, None, error_kind="not_on_line_item") == (
        "failed: not_on_line_item"
    )


def test_bids_print_as_money() -> None:
    assert [format_bid(b) for b in (D("0.5000"), D("1.2345"), D("100.0000"), None)] == [
        "0.50",
        "1.2345",
        "100.00",
        "none",
    ]


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+x", "-12", "@SUM(A1)", "\tx", "\rx", "'=x", "''=x", "'plain", "plain", "", "a=b"],
)
def test_escaping_is_undone_exactly(text: str) -> None:
    escaped = escape_cell(text)
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unescape_cell(escaped) == text


def test_only_risky_cells_are_touched() -> None:
    assert escape_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert escape_cell("'plain") == "'plain"
    assert escape_cell("sku-1") == "sku-1"


def parent(
    action: Action,
    desired: str | None = None,
    bid_before: str | None = None,
    status_before: str | None = None,
) -> ParentItem:
    return ParentItem(
        7,
        "s",
        "acc",
        action,
        D(desired) if desired else None,
        D(bid_before) if bid_before else None,
        status_before,
    )


def test_a_retry_repeats_the_change() -> None:
    assert retry_row(parent(Action.SET_BID, "1.5")) == {
        "line_item_id": 7,
        "sku_id": "s",
        "action": "set_bid",
        "bid_override": D("1.5"),
        "account_id": "acc",
    }


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (parent(Action.ADD, "0.3"), ("remove", None)),
        (parent(Action.ADD, "0.3", "0.2", "paused"), ("set_bid", D("0.2"))),
        (parent(Action.SET_BID, "0.9", "0.4", "active"), ("set_bid", D("0.4"))),
        (parent(Action.REMOVE, None, "0.4", "active"), ("add", D("0.4"))),
        (parent(Action.REMOVE, None, None, "active"), ("add", None)),
        (parent(Action.PAUSE, None, "0.4", "active"), ("unpause", None)),
        (parent(Action.UNPAUSE, None, None, "paused"), ("pause", None)),
        (parent(Action.SET_BID, "0.9", None, "active"), ("clear_bid", None)),
        (parent(Action.CLEAR_BID, None, "0.4", "active"), ("set_bid", D("0.4"))),
        (parent(Action.CLEAR_BID, None, None, "active"), NotRevertible.NOTHING_CHANGED),
        (parent(Action.REMOVE, None, "0.4", "paused"), NotRevertible.REMOVED_WHILE_PAUSED),
        (parent(Action.PAUSE, None, None, "unknown"), NotRevertible.BEFORE_UNKNOWN),
        (parent(Action.PAUSE, None, None, "paused"), NotRevertible.NOTHING_CHANGED),
    ],
)
def test_a_revert_restores_the_before_state_or_says_why_not(
    item: ParentItem, expected: object
) -> None:
    row = revert_row(item)
    if isinstance(expected, NotRevertible):
        assert row == expected
    else:
        assert isinstance(row, dict)
        assert (row["action"], row["bid_override"]) == expected
        assert (row["line_item_id"], row["sku_id"], row["account_id"]) == (7, "s", "acc")
