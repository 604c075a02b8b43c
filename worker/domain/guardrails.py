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
from decimal import Decimal
from typing import Any

from worker.domain.money import format_bid


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


def _number(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def guardrails_from_options(
    options: Mapping[str, Any], default_ratio: Decimal
) -> Guardrails | None:
    """The job's guardrails from its stored options, which were checked when the job came in
    (`worker.jobs.documents.JobOptions`); None when they are turned off."""
    if options.get("guardrails", True) is False:
        return None
    ratio = _number(options["max_change_ratio"]) if "max_change_ratio" in options else default_ratio
    return Guardrails(max_bid=_number(options.get("max_bid")), max_change_ratio=ratio)
