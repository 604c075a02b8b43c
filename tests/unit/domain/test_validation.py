from __future__ import annotations

from decimal import Decimal

import pytest

from worker.domain.enums import Action
from worker.domain.validation import ItemSpec, RowError, missing_columns, validate_row

MAX = Decimal("100")


def row(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "line_item_id": "123",
        "sku_id": "sku-1",
        "action": "set_bid",
        "bid_override": "1.25",
    }
    base.update(kw)
    return base


def errors(raw: dict[str, object]) -> list[tuple[str, str]]:
    result = validate_row(7, raw, max_bid=MAX)
    assert isinstance(result, list)
    assert all(e.row == 7 for e in result)
    return [(e.field, e.reason) for e in result]


def test_a_good_row() -> None:
    spec = validate_row(3, row(account_id=" 42 "), max_bid=MAX)
    assert spec == ItemSpec(3, 123, "sku-1", Action.SET_BID, Decimal("1.25"), "42")


def test_json_types_are_accepted() -> None:
    spec = validate_row(1, row(line_item_id=2**63 - 1, bid_override=0.5), max_bid=MAX)
    assert isinstance(spec, ItemSpec)
    assert spec.line_item_id == 2**63 - 1
    assert spec.bid == Decimal("0.5")


@pytest.mark.parametrize("value", ["0", "-4", "abc", "1.5", str(2**63), "", True])
def test_line_item_id_must_be_a_positive_int64(value: object) -> None:
    assert [f for f, _ in errors(row(line_item_id=value))] == ["line_item_id"]


def test_sku_length() -> None:
    assert errors(row(sku_id="")) == [("sku_id", "is required")]
    assert validate_row(1, row(sku_id="x" * 500), max_bid=MAX)
    assert errors(row(sku_id="x" * 501)) == [("sku_id", "is longer than 500 characters")]


def test_action_must_be_known() -> None:
    [(field, reason)] = errors(row(action="delete"))
    assert field == "action"
    assert "set_bid, add, remove, pause, unpause" in reason


@pytest.mark.parametrize(
    ("bid", "reason"),
    [
        ("-0.01", "must be at least 0"),
        ("100.01", "must be at most 100"),
        ("abc", "'abc' is not a decimal number"),
        ("NaN", "must be a finite decimal number"),
        ("1.23456", "has more than 4 decimal places"),
    ],
)
def test_bid_rules(bid: str, reason: str) -> None:
    assert errors(row(bid_override=bid)) == [("bid_override", reason)]


def test_bid_presence_depends_on_the_action() -> None:
    assert errors(row(bid_override="")) == [("bid_override", "is required for set_bid")]
    assert isinstance(validate_row(1, row(action="add", bid_override=""), max_bid=MAX), ItemSpec)
    assert isinstance(validate_row(1, row(action="add"), max_bid=MAX), ItemSpec)
    for action in ("remove", "pause", "unpause"):
        assert errors(row(action=action)) == [("bid_override", f"must be empty for {action}")]
        assert isinstance(
            validate_row(1, row(action=action, bid_override=None), max_bid=MAX), ItemSpec
        )


def test_every_bad_field_of_a_row_is_reported() -> None:
    fields = [f for f, _ in errors({"line_item_id": "x", "sku_id": "", "action": "zap"})]
    assert fields == ["line_item_id", "sku_id", "action"]


def test_row_error_names_row_and_field() -> None:
    assert str(RowError(4, "sku_id", "is required")) == "row 4, sku_id: is required"


def test_missing_columns() -> None:
    assert missing_columns(["line_item_id", " sku_id ", "action", "bid_override"]) == []
    assert missing_columns(["sku_id"]) == ["line_item_id", "action", "bid_override"]
    assert missing_columns(None) == ["line_item_id", "sku_id", "action", "bid_override"]


def test_the_fast_path_agrees_with_the_full_checks_on_every_tricky_value() -> None:
    """Every combination of awkward values: the short path may only ever answer what the
    full checks answer (it exists for speed, never for different rules)."""
    from itertools import product

    from worker.domain.validation import _validate_slowly, validate_values

    line_items = ["1", "007", " 5", "0", "-1", "²", str(2**63 - 1), str(2**63), "", None, 5]
    skus = ["a", " a", "a ", "", "x" * 500, "x" * 501, None]
    actions = ["set_bid", "SET_BID", " add", "add", "remove", "pause", "unpause", "jump", None]
    bids = [
        "",
        None,
        "1",
        "1.25",
        "0",
        "0.00001",
        "1.2345",
        "-1",
        "100",
        "100.01",
        " 2",
        "1e2",
        "abc",
        "NaN",
        1.5,
    ]
    accounts = ["", None, "42", " 42", "x" * 101]
    for values in product(line_items, skus, actions, bids, accounts):
        fast = validate_values(7, *values, max_bid=MAX)
        slow = _validate_slowly(7, *values, max_bid=MAX)
        assert fast == slow, values
