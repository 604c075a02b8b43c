"""Per-job limits on bids, checked by the planner against the bid it has just read.

The API accepts any bid above a SKU's minimum, so a pipeline bug (cents read as euros, a wrong
currency) would be applied in full. Guardrails fail such SKUs as `guardrail` instead; a job that
means it says so in its options:

    {"max_bid": "2.50", "max_change_ratio": 3, "guardrails": false}

`max_bid`: no bid above it (none by default: PROMOBULK_MAX_BID, checked at submission, remains);
`max_change_ratio`: a new bid may be at most this many times the current bid, or the current bid
divided by it (PROMOBULK_MAX_CHANGE_RATIO by default, `null` for no limit); `guardrails: false`
turns both off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from worker.domain.money import format_bid

OPTION_KEYS = ("guardrails", "max_bid", "max_change_ratio")


class BadOption(ValueError):
    """A job option that cannot be used; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Guardrails:
    max_bid: Decimal | None = None
    max_change_ratio: Decimal | None = Decimal(3)

    def breach(self, desired: Decimal, current: Decimal | None) -> str | None:
        """Why `desired` may not replace `current` (None: no bid override, or not read), or None.

        Only a change is judged: a bid already in place is `unchanged` before this is asked.
        """
        if self.max_bid is not None and desired > self.max_bid:
            return (
                f"bid {format_bid(desired)} is above the job's maximum bid"
                f" {format_bid(self.max_bid)}"
            )
        ratio = self.max_change_ratio
        if ratio is None or current is None or desired == current:
            return None
        limit = f"the job allows at most {ratio} times, either way"
        change_text = f"bid change from {format_bid(current)} to {format_bid(desired)}"
        if desired == 0 or current == 0:
            return f"{change_text} is unbounded ({limit})"
        change = max(desired / current, current / desired)
        if change > ratio:
            return f"{change_text} is {change:.2f} times ({limit})"
        return None


def _decimal(field: str, value: Any, minimum: Decimal) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise BadOption(field, "must be a decimal number or null")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise BadOption(field, f"{str(value)[:40]!r} is not a decimal number") from None
    if not number.is_finite() or number < minimum:
        raise BadOption(field, f"must be a number of at least {minimum}")
    return number


def guardrails_from_options(
    options: Mapping[str, Any], default_ratio: Decimal
) -> Guardrails | None:
    """The job's guardrails (None when turned off); raises BadOption for a value it cannot use."""
    enabled = options.get("guardrails", True)
    if not isinstance(enabled, bool):
        raise BadOption("guardrails", "must be true or false")
    max_bid = _decimal("max_bid", options.get("max_bid"), Decimal(0))
    ratio = (
        _decimal("max_change_ratio", options["max_change_ratio"], Decimal(1))
        if "max_change_ratio" in options
        else default_ratio
    )
    if not enabled:
        return None
    return Guardrails(max_bid=max_bid, max_change_ratio=ratio)
