from __future__ import annotations

from decimal import Decimal

import pytest

from worker.domain.enums import Action
from worker.domain.validation import ItemSpec, RowError, missing_columns, validate_row

MAX = Decimal("100")
# Arabic-Indic digits: Python's int() and Decimal() read them as 1, 2 and 5.
ONE, TWO, FIVE = "\u0661", "\u0662", "\u0665"


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
    [(field, reason)] = errors(row(sku_id="x" * 501))
    assert field == "sku_id"
    assert reason.startswith("is longer than 500 characters (501: 'xxxxxxx")


def test_action_must_be_known() -> None:
    [(field, reason)] = errors(row(action="delete"))
    assert field == "action"
    assert "set_bid, clear_bid, add, remove, pause, unpause" in reason


@pytest.mark.parametrize(
    ("bid", "reason"),
    [
        ("-0.01", "'-0.01' is not a decimal number (no sign: a bid is at least 0)"),
        ("-0", "'-0' is not a decimal number (no sign: a bid is at least 0)"),
        (-0.0, "must be at least 0, not '-0.0'"),
        ("100.01", "must be at most 100, not '100.01'"),
        ("abc", "'abc' is not a decimal number"),
        ("NaN", "'NaN' is not a decimal number"),
        (float("inf"), "must be a finite decimal number, not 'inf'"),
        ("1.23456", "has more than 4 decimal places: '1.23456'"),
        ("0,57", "'0,57' is not a decimal number (a decimal comma? write it with a dot)"),
        ("1e2", "'1e2' is not a decimal number (write it without an exponent)"),
        ("1E-2", "'1E-2' is not a decimal number (write it without an exponent)"),
        (f"{ONE}.{FIVE}", f"'{ONE}.{FIVE}' is not a decimal number"),
        ("0x10", "'0x10' is not a decimal number"),
    ],
)
def test_bid_rules(bid: object, reason: str) -> None:
    assert errors(row(bid_override=bid)) == [("bid_override", reason)]


@pytest.mark.parametrize("bid", ["0.50000", "1.250000000", "0007.5", " 2 ", 3, 0.25])
def test_trailing_zeros_and_plain_numbers_are_bids(bid: object) -> None:
    spec = validate_row(1, row(bid_override=bid), max_bid=MAX)
    assert isinstance(spec, ItemSpec)
    assert spec.bid == Decimal(str(bid).strip())


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("line_item_id", ONE + TWO, f"must be a positive 64-bit integer, not '{ONE}{TWO}'"),
        ("line_item_id", "12a", "must be a positive 64-bit integer, not '12a'"),
        ("account_id", ONE, f"must be a string of digits, not '{ONE}'"),
        ("account_id", {"id": 4}, "must be a string of digits, not '{\\'id\\': 4}'"),
        ("account_id", "acme", "must be a string of digits, not 'acme'"),
        ("account_id", "-4", "must be a string of digits, not '-4'"),
        ("sku_id", "a\x00b", "contains a NUL character: 'a\\x00b'"),
        ("sku_id", "a\ud800b", "contains a lone surrogate (not valid Unicode): 'a\\ud800b'"),
        ("sku_id", "a\x07b", "contains a control character (\\x07): 'a\\x07b'"),
        ("sku_id", ["a"], "must be text, not '[\\'a\\']'"),
    ],
)
def test_values_that_would_be_misread_are_refused_and_shown(
    field: str, value: object, reason: str
) -> None:
    assert errors(row(**{field: value})) == [(field, reason)]


def test_account_ids_are_digits_as_text_or_json_integers() -> None:
    for value, stored in [("42", "42"), (" 42 ", "42"), (42, "42"), ("0012", "0012")]:
        spec = validate_row(1, row(account_id=value), max_bid=MAX)
        assert isinstance(spec, ItemSpec)
        assert spec.account_id == stored


def test_a_shown_value_is_short_and_escaped() -> None:
    from worker.domain.validation import shown

    assert shown("x" * 100) == "'" + "x" * 40 + "…'"
    assert shown("it's\x00\ud800\n") == "'it\\'s\\x00\\ud800\\x0a'"
    assert shown(12) == "'12'"


def test_bid_presence_depends_on_the_action() -> None:
    assert errors(row(bid_override="")) == [("bid_override", "is required for set_bid")]
    assert isinstance(validate_row(1, row(action="add", bid_override=""), max_bid=MAX), ItemSpec)
    assert isinstance(validate_row(1, row(action="add"), max_bid=MAX), ItemSpec)
    for action in ("remove", "pause", "unpause"):
        assert errors(row(action=action)) == [
            ("bid_override", f"must be empty for {action}, not '1.25'")
        ]
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
    skus = ["a", " a", "a ", "", "x" * 500, "x" * 501, None, "a\x00", "a\u00a0b", 7]
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
        "0.50000",
        "-0",
        "0,5",
        ONE,
    ]
    accounts = ["", None, "42", " 42", "x" * 101, "4a", ONE, 42, "9" * 101]
    for values in product(line_items, skus, actions, bids, accounts):
        fast = validate_values(7, *values, max_bid=MAX)
        slow = _validate_slowly(7, *values, max_bid=MAX)
        assert fast == slow, values


def test_a_bid_of_zero_points_to_clear_bid() -> None:
    for action in ("set_bid", "add"):
        [(field, reason)] = errors(row(action=action, bid_override="0.00"))
        assert field == "bid_override"
        assert "use the action clear_bid" in reason
    spec = validate_row(1, row(action="clear_bid", bid_override=""), max_bid=MAX)
    assert isinstance(spec, ItemSpec)
    assert (spec.action, spec.bid) == (Action.CLEAR_BID, None)
    assert errors(row(action="clear_bid")) == [
        ("bid_override", "must be empty for clear_bid, not '1.25'")
    ]
