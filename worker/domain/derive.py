"""The rows of a job made from another one: a retry of its failed SKUs, a revert of its changes.

Pure: the service streams the parent's items through these and into the one submission path.
A revert restores each changed SKU's recorded before-state with one action, where one action can:

| the parent did (succeeded)        | before                 | the revert row                |
|-----------------------------------|------------------------|-------------------------------|
| add a SKU that was not there      | absent                 | remove                        |
| add / set_bid / clear_bid there   | bid B                  | set_bid B                     |
| add / set_bid on a SKU there      | no bid override        | clear_bid                     |
| remove                            | active, bid B          | add with bid B (none: no bid) |
| pause / unpause                   | active / paused        | unpause / pause               |

and names why it cannot, for the rest (see `NotRevertible`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from worker.domain.enums import Action, ProductStatus

Row = dict[str, object]


class NotRevertible(StrEnum):
    """Why a changed SKU is left out of a revert (each is counted and reported)."""

    # A product comes back `active` when re-added; pausing it too would be a second action on
    # the same SKU, which a job cannot hold.
    REMOVED_WHILE_PAUSED = "removed_while_paused"
    # The parent skipped its read (`skip_read`): what was there before is not known.
    BEFORE_UNKNOWN = "before_unknown"
    # Nothing recorded differs from the parent's target (a crash-retried no-op).
    NOTHING_CHANGED = "nothing_changed"


REASON_TEXT = {
    NotRevertible.REMOVED_WHILE_PAUSED: "it was paused when removed: re-adding makes it active",
    NotRevertible.BEFORE_UNKNOWN: "its before-state is unknown: the job skipped its read",
    NotRevertible.NOTHING_CHANGED: "its recorded before-state already is the job's target",
}


def reason_text(reason: str) -> str:
    """A reason's sentence; a reason an older version recorded, as it is."""
    known = {r.value: text for r, text in REASON_TEXT.items()}
    return known.get(reason, reason)


@dataclass(frozen=True, slots=True)
class ParentItem:
    line_item_id: int
    sku_id: str
    account_id: str | None
    action: Action
    desired_bid: Decimal | None
    bid_before: Decimal | None
    status_before: str | None  # None: the SKU was not on the line item


def _row(item: ParentItem, action: Action, bid: Decimal | None) -> Row:
    return {
        "line_item_id": item.line_item_id,
        "sku_id": item.sku_id,
        "action": action.value,
        "bid_override": bid,
        "account_id": item.account_id,
    }


def retry_row(item: ParentItem) -> Row:
    """The same change again."""
    return _row(item, item.action, item.desired_bid)


def revert_row(item: ParentItem) -> Row | NotRevertible:
    """The change that restores a succeeded item's before-state, or why there is none."""
    before = item.status_before
    if before == ProductStatus.UNKNOWN:
        return NotRevertible.BEFORE_UNKNOWN
    if item.action in (Action.ADD, Action.SET_BID, Action.CLEAR_BID):
        if before is None:
            return _row(item, Action.REMOVE, None)
        if item.bid_before is None:
            if item.action is Action.CLEAR_BID:
                return NotRevertible.NOTHING_CHANGED
            return _row(item, Action.CLEAR_BID, None)
        return _row(item, Action.SET_BID, item.bid_before)
    if item.action is Action.REMOVE:
        if before is None:
            return NotRevertible.NOTHING_CHANGED
        if before == ProductStatus.PAUSED:
            return NotRevertible.REMOVED_WHILE_PAUSED
        return _row(item, Action.ADD, item.bid_before)
    undo = Action.UNPAUSE if item.action is Action.PAUSE else Action.PAUSE
    target = ProductStatus.PAUSED if item.action is Action.PAUSE else ProductStatus.ACTIVE
    if before is None or before == target:
        return NotRevertible.NOTHING_CHANGED
    return _row(item, undo, None)
