"""The rules an input row must satisfy, row by row, with errors that name the row and the field.

Rows are numbered from 1 for the first data row (the CSV header is not a row).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from worker.domain.enums import Action

INT64_MAX = 2**63 - 1
SKU_MAX_LEN = 500
ACCOUNT_MAX_LEN = 100
# What the database holds: numeric(14, 4).
BID_MAX_DECIMALS = 4
BID_MAX_INTEGER_DIGITS = 10
BID_PATTERN = rf"^[0-9]{{1,{BID_MAX_INTEGER_DIGITS}}}(\.[0-9]{{1,{BID_MAX_DECIMALS}}})?$"
REQUIRED_COLUMNS = ("line_item_id", "sku_id", "action", "bid_override")
OPTIONAL_COLUMNS = ("account_id",)


@dataclass(frozen=True, slots=True)
class ItemSpec:
    row_number: int
    line_item_id: int
    sku_id: str
    action: Action
    bid: Decimal | None
    account_id: str | None


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.reason}"


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _line_item_id(value: object) -> int | str:
    if isinstance(value, bool):
        return "must be an integer"
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        return "must be a positive 64-bit integer"
    if not 0 < number <= INT64_MAX:
        return "must be a positive 64-bit integer"
    return number


def _sku_id(value: object) -> str:
    if not isinstance(value, str) or value.strip() == "":
        return ""
    return value.strip()


def _bid(value: object, max_bid: Decimal) -> Decimal | str:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return "must be a decimal number"
    try:
        bid = Decimal(str(value).strip())
    except InvalidOperation:
        return f"{str(value)[:40]!r} is not a decimal number"
    if not bid.is_finite():
        return "must be a finite decimal number"
    if bid < 0:
        return "must be at least 0"
    if bid > max_bid:
        return f"must be at most {max_bid}"
    exponent = bid.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > BID_MAX_DECIMALS:
        return f"has more than {BID_MAX_DECIMALS} decimal places"
    return bid


_ACTIONS = {a.value: a for a in Action}
_NO_BID = frozenset({Action.REMOVE, Action.PAUSE, Action.UNPAUSE})
_PLAIN_BID = re.compile(BID_PATTERN)


def validate_row(
    row_number: int, raw: Mapping[str, object], *, max_bid: Decimal
) -> ItemSpec | list[RowError]:
    """One row given as a mapping of the CSV's column names (a JSON item, a DictReader row)."""
    return validate_values(
        row_number,
        raw.get("line_item_id"),
        raw.get("sku_id"),
        raw.get("action"),
        raw.get("bid_override"),
        raw.get("account_id"),
        max_bid=max_bid,
    )


def validate_values(
    row_number: int,
    line_item_id: object,
    sku_id: object,
    action: object,
    bid_override: object,
    account_id: object,
    *,
    max_bid: Decimal,
) -> ItemSpec | list[RowError]:
    """One row's field checks; duplicates across rows are checked where all rows are (in SQL).

    A clean row of plain text (the common case by far) takes a short path; anything else, and
    every row with a problem, takes the full checks that name each problem.
    """
    plain = _plain(row_number, line_item_id, sku_id, action, bid_override, account_id, max_bid)
    if plain is not None:
        return plain
    return _validate_slowly(
        row_number, line_item_id, sku_id, action, bid_override, account_id, max_bid=max_bid
    )


def _plain(  # noqa: C901 - the hot path of every clean row, kept flat on purpose
    row_number: int,
    line_item_id: object,
    sku_id: object,
    action: object,
    bid_override: object,
    account_id: object,
    max_bid: Decimal,
) -> ItemSpec | None:
    """The row as an ItemSpec when it is clean, plain text; None sends it to the full checks."""
    if not (
        isinstance(line_item_id, str)
        and isinstance(sku_id, str)
        and isinstance(action, str)
        and line_item_id.isascii()
        and line_item_id.isdigit()
        and 0 < len(sku_id) <= SKU_MAX_LEN
        and not sku_id[0].isspace()
        and not sku_id[-1].isspace()
    ):
        return None
    number = int(line_item_id)
    kind = _ACTIONS.get(action)
    if kind is None or not 0 < number <= INT64_MAX:
        return None
    bid: Decimal | None = None
    if bid_override:
        if not isinstance(bid_override, str) or kind in _NO_BID:
            return None
        if _PLAIN_BID.fullmatch(bid_override) is None:
            return None
        bid = Decimal(bid_override)
        if bid > max_bid:
            return None
    elif kind is Action.SET_BID:
        return None
    account: str | None = None
    if account_id:
        if not isinstance(account_id, str) or len(account_id) > ACCOUNT_MAX_LEN:
            return None
        if account_id != account_id.strip():
            return None
        account = account_id
    return ItemSpec(row_number, number, sku_id, kind, bid, account)


class _Problems:
    """One row's problems, each named by its field."""

    def __init__(self, row_number: int) -> None:
        self.row_number = row_number
        self.errors: list[RowError] = []

    def add(self, field: str, reason: str) -> None:
        self.errors.append(RowError(self.row_number, field, reason))


def _action(raw: object, problems: _Problems) -> Action | None:
    if _blank(raw):
        problems.add("action", "is required")
        return None
    try:
        return Action(str(raw).strip().lower())
    except ValueError:
        choices = ", ".join(a.value for a in Action)
        problems.add("action", f"{str(raw)[:40]!r} is not one of {choices}")
        return None


def _checked_bid(
    raw: object, action: Action | None, max_bid: Decimal, problems: _Problems
) -> Decimal | None:
    """The bid, given where the action needs one and absent where it takes none."""
    if _blank(raw):
        if action is Action.SET_BID:
            problems.add("bid_override", "is required for set_bid")
        return None
    if action in _NO_BID:
        assert action is not None
        problems.add("bid_override", f"must be empty for {action.value}")
    parsed = _bid(raw, max_bid)
    if isinstance(parsed, str):
        problems.add("bid_override", parsed)
        return None
    return parsed


def _validate_slowly(
    row_number: int,
    raw_line_item: object,
    raw_sku: object,
    raw_action: object,
    raw_bid: object,
    raw_account: object,
    *,
    max_bid: Decimal,
) -> ItemSpec | list[RowError]:
    problems = _Problems(row_number)
    line_item = _line_item_id(raw_line_item)
    if isinstance(line_item, str):
        problems.add("line_item_id", line_item if not _blank(raw_line_item) else "is required")

    sku = _sku_id(raw_sku)
    if not sku:
        problems.add("sku_id", "is required")
    elif len(sku) > SKU_MAX_LEN:
        problems.add("sku_id", f"is longer than {SKU_MAX_LEN} characters")

    action = _action(raw_action, problems)
    bid = _checked_bid(raw_bid, action, max_bid, problems)

    account: str | None = None
    if not _blank(raw_account):
        account = str(raw_account).strip()
        if len(account) > ACCOUNT_MAX_LEN:
            problems.add("account_id", f"is longer than {ACCOUNT_MAX_LEN} characters")

    if problems.errors or isinstance(line_item, str) or action is None:
        return problems.errors
    return ItemSpec(row_number, line_item, sku, action, bid, account)


def missing_columns(header: list[str] | None) -> list[str]:
    present = {h.strip() for h in header or []}
    return [c for c in REQUIRED_COLUMNS if c not in present]
