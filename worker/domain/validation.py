"""The rules an input row must satisfy, row by row, with errors that name the row and the field.

Rows are numbered from 1 for the first data row (the CSV header is not a row).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from worker.domain.enums import Action

INT64_MAX = 2**63 - 1
SKU_MAX_LEN = 500
ACCOUNT_MAX_LEN = 100
BID_MAX_DECIMALS = 4
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
    elif isinstance(value, str) and value.strip().isdigit():
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


def validate_row(
    row_number: int, raw: Mapping[str, object], *, max_bid: Decimal
) -> ItemSpec | list[RowError]:
    """One row's field checks; duplicates across rows are checked where all rows are (in SQL)."""
    errors: list[RowError] = []

    def err(field: str, reason: str) -> None:
        errors.append(RowError(row_number, field, reason))

    line_item = _line_item_id(raw.get("line_item_id"))
    if isinstance(line_item, str):
        err("line_item_id", line_item if not _blank(raw.get("line_item_id")) else "is required")

    sku = _sku_id(raw.get("sku_id"))
    if not sku:
        err("sku_id", "is required")
    elif len(sku) > SKU_MAX_LEN:
        err("sku_id", f"is longer than {SKU_MAX_LEN} characters")

    action: Action | None = None
    raw_action = raw.get("action")
    try:
        action = Action(str(raw_action).strip().lower()) if not _blank(raw_action) else None
        if action is None:
            err("action", "is required")
    except ValueError:
        err(
            "action", f"{str(raw_action)[:40]!r} is not one of {', '.join(a.value for a in Action)}"
        )

    bid: Decimal | None = None
    raw_bid = raw.get("bid_override")
    if not _blank(raw_bid):
        parsed = _bid(raw_bid, max_bid)
        if isinstance(parsed, str):
            err("bid_override", parsed)
        else:
            bid = parsed
    if action is Action.SET_BID and _blank(raw_bid):
        err("bid_override", "is required for set_bid")
    if action in (Action.REMOVE, Action.PAUSE, Action.UNPAUSE) and not _blank(raw_bid):
        err("bid_override", f"must be empty for {action.value}")

    account: str | None = None
    raw_account = raw.get("account_id")
    if not _blank(raw_account):
        account = str(raw_account).strip()
        if len(account) > ACCOUNT_MAX_LEN:
            err("account_id", f"is longer than {ACCOUNT_MAX_LEN} characters")

    if errors or isinstance(line_item, str) or action is None:
        return errors
    return ItemSpec(row_number, line_item, sku, action, bid, account)


def missing_columns(header: list[str] | None) -> list[str]:
    present = {h.strip() for h in header or []}
    return [c for c in REQUIRED_COLUMNS if c not in present]
