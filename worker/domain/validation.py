"""The rules an input row must satisfy, row by row, with errors that name the row, the field and
the offending value.

Rows are numbered from 1 for the first data row (the CSV header is not a row). A value that
could be misread is refused, never guessed at: numbers are ASCII digits only (Python reads an
Arabic-Indic one as 1), a bid has no exponent and no sign, text holds no NUL, control character
or lone surrogate (Postgres cannot store the first, UTF-8 cannot encode the last).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

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
SHOWN_MAX_LEN = 40


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


def shown(value: object) -> str:
    """A value as a refusal quotes it: shortened, and escaped so that no NUL, control character
    or lone surrogate reaches a terminal, a log or a JSON encoder as itself."""
    text = value if isinstance(value, str) else repr(value)
    cut = "".join(c if c.isprintable() and c != "'" else _escape(c) for c in text[:SHOWN_MAX_LEN])
    return f"'{cut}…'" if len(text) > SHOWN_MAX_LEN else f"'{cut}'"


def _escape(c: str) -> str:
    if c == "'":
        return "\\'"
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else c


def text_problem(text: str) -> str | None:
    """Why a text cannot be stored and shown as it is, or None. Spaces and format characters
    pass; NUL, other control characters and lone surrogates do not."""
    if text.isprintable():
        return None
    for c in text:
        if c == "\x00":
            return "contains a NUL character"
        category = unicodedata.category(c)
        if category == "Cs":
            return "contains a lone surrogate (not valid Unicode)"
        if category == "Cc":
            return f"contains a control character ({_escape(c)})"
    return None


class _Refused(str):
    """A field's reason for refusal, told apart from the field's good value."""


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _digits(value: object) -> str | None:
    """ASCII digits, from text (surrounding spaces allowed) or a JSON integer; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value >= 0 else None
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.isascii() and stripped.isdigit():
            return stripped
    return None


def _line_item_id(value: object) -> int | _Refused:
    digits = _digits(value)
    if digits is None or not 0 < int(digits) <= INT64_MAX:
        return _Refused(f"must be a positive 64-bit integer, not {shown(value)}")
    return int(digits)


def _sku_id(value: object) -> str | _Refused:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return _Refused(f"must be text, not {shown(value)}")
    sku = value.strip()
    if len(sku) > SKU_MAX_LEN:
        return _Refused(f"is longer than {SKU_MAX_LEN} characters ({len(sku):,}: {shown(sku)})")
    problem = text_problem(sku)
    return _Refused(f"{problem}: {shown(sku)}") if problem else sku


def _action(value: object) -> Action | _Refused:
    if isinstance(value, str) and value.strip().lower() in _ACTIONS:
        return _ACTIONS[value.strip().lower()]
    return _Refused(f"{shown(value)} is not one of {', '.join(a.value for a in Action)}")


_DECIMAL_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _bid(value: object, max_bid: Decimal) -> Decimal | _Refused:
    """A bid as plain decimal digits with a dot: no sign, no exponent, no other script's digits.
    Trailing zeros are not precision: `0.50000` is 0.5."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return _Refused(f"must be a decimal number, not {shown(value)}")
    if isinstance(value, str):
        text = value.strip()
        if _DECIMAL_TEXT.fullmatch(text) is None:
            return _Refused(f"{shown(value)} is not a decimal number{_bid_hint(text)}")
        bid = Decimal(text)
    else:
        bid = Decimal(str(value))
    if not bid.is_finite():
        return _Refused(f"must be a finite decimal number, not {shown(value)}")
    if bid.is_signed():
        return _Refused(f"must be at least 0, not {shown(value)}")
    if bid > max_bid:
        return _Refused(f"must be at most {max_bid}, not {shown(value)}")
    exponent = bid.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > BID_MAX_DECIMALS:
        return _Refused(f"has more than {BID_MAX_DECIMALS} decimal places: {shown(value)}")
    return bid


def _bid_hint(text: str) -> str:
    if "," in text:
        return " (a decimal comma? write it with a dot)"
    if "e" in text.lower() and any(c.isdigit() for c in text):
        return " (write it without an exponent)"
    if text.startswith(("-", "+")):
        return " (no sign: a bid is at least 0)"
    return ""


def _account_id(value: object) -> str | _Refused | None:
    if _blank(value):
        return None
    digits = _digits(value)
    if digits is None:
        return _Refused(f"must be a string of digits, not {shown(value)}")
    if len(digits) > ACCOUNT_MAX_LEN:
        return _Refused(f"is longer than {ACCOUNT_MAX_LEN} digits: {shown(digits)}")
    return digits


_ACTIONS = {a.value: a for a in Action}
_NO_BID = frozenset({Action.CLEAR_BID, Action.REMOVE, Action.PAUSE, Action.UNPAUSE})
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
        and sku_id.isprintable()
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
        if bid > max_bid or not bid:
            return None
    elif kind is Action.SET_BID:
        return None
    account: str | None = None
    if account_id:
        if not isinstance(account_id, str) or len(account_id) > ACCOUNT_MAX_LEN:
            return None
        if not (account_id.isascii() and account_id.isdigit()):
            return None
        account = account_id
    return ItemSpec(row_number, number, sku_id, kind, bid, account)


class _Problems:
    """One row's problems, each named by its field."""

    def __init__(self, row_number: int) -> None:
        self.row_number = row_number
        self.errors: list[RowError] = []

    def check(self, field: str, result: object) -> bool:
        """Record a refusal; True when the value is good."""
        if isinstance(result, _Refused):
            self.errors.append(RowError(self.row_number, field, str(result)))
            return False
        return True

    def add(self, field: str, reason: str) -> None:
        self.errors.append(RowError(self.row_number, field, reason))


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
        problems.add("bid_override", f"must be empty for {action.value}, not {shown(raw)}")
    bid = _bid(raw, max_bid)
    if isinstance(bid, Decimal) and bid == 0 and action in (Action.SET_BID, Action.ADD):
        # The API reads a bid of 0.0 as "no bid override": say so with the action that means it.
        problems.add(
            "bid_override",
            f"0 would remove the bid override: use the action clear_bid, not {shown(raw)}",
        )
        return None
    return bid if problems.check("bid_override", bid) and isinstance(bid, Decimal) else None


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
    line_item = None if _blank(raw_line_item) else _line_item_id(raw_line_item)
    sku = None if _blank(raw_sku) else _sku_id(raw_sku)
    action = None if _blank(raw_action) else _action(raw_action)
    for field, value in (("line_item_id", line_item), ("sku_id", sku), ("action", action)):
        if value is None:
            problems.add(field, "is required")
        else:
            problems.check(field, value)
    known_action = action if isinstance(action, Action) else None
    bid = _checked_bid(raw_bid, known_action, max_bid, problems)
    account = _account_id(raw_account)
    problems.check("account_id", account)
    if problems.errors:
        return problems.errors
    assert isinstance(line_item, int)
    assert isinstance(sku, str)
    assert known_action is not None
    assert account is None or isinstance(account, str)
    return ItemSpec(row_number, line_item, sku, known_action, bid, account)


def missing_columns(header: list[str] | None) -> list[str]:
    present = {h.strip() for h in header or []}
    return [c for c in REQUIRED_COLUMNS if c not in present]
