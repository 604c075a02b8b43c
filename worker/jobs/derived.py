"""The rows of a retry or a revert, streamed from the parent's items, and what a revert left out.

Pure translation: `worker.domain.derive` decides each row; this feeds it the parent's stored
items and keeps the count of what could not be reverted, by reason, with a few examples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.db.records import ItemRow
from worker.domain.derive import NotRevertible, ParentItem, Row, reason_text, retry_row, revert_row
from worker.domain.enums import Action

REVERT_EXAMPLES = 20


def parent_item(row: ItemRow) -> ParentItem:
    return ParentItem(
        line_item_id=int(row.line_item_id),
        sku_id=row.sku_id,
        account_id=row.account_id,
        action=Action(row.action),
        desired_bid=row.desired_bid,
        bid_before=row.bid_before,
        status_before=row.product_status_before,
    )


def retry_rows(parent: Iterable[ItemRow]) -> Iterator[Row]:
    return (retry_row(parent_item(r)) for r in parent)


@dataclass
class Skipped:
    """The parent's changed SKUs a revert left out: counts by reason and the first examples."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, str]] = field(default_factory=list)

    def add(self, item: ParentItem, reason: NotRevertible) -> None:
        self.counts[reason.value] += 1
        if len(self.examples) < REVERT_EXAMPLES:
            self.examples.append(
                {
                    "line_item_id": str(item.line_item_id),
                    "sku_id": item.sku_id,
                    "reason": reason.value,
                }
            )

    def summary(self) -> str:
        return "; ".join(f"{n} SKU(s): {reason_text(r)}" for r, n in self.counts.most_common())

    def stored(self) -> dict[str, Any]:
        """As kept in the child job's options (`revert_skipped`)."""
        if not self.counts:
            return {}
        return {
            "revert_skipped": {
                "count": sum(self.counts.values()),
                "by_reason": dict(self.counts),
                "examples": self.examples,
            }
        }

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Skipped:
        """What an earlier revert (the same idempotency key) recorded."""
        return cls(Counter(options.get("revert_skipped", {}).get("by_reason", {})))


def revert_rows(parent: Iterable[ItemRow], skipped: Skipped) -> Iterator[Row]:
    """For each SKU the parent changed, the row that restores it, or its reason in `skipped`."""
    for r in parent:
        item = parent_item(r)
        row = revert_row(item)
        if isinstance(row, NotRevertible):
            skipped.add(item, row)
        else:
            yield row
