"""One line per SKU that says what happened, or for a dry run what would happen.

Computed from what is stored (outcome, before and after values, the error), never stored itself,
so the same words serve the CLI, the items listing and a dry run's report.
"""

from __future__ import annotations

from worker.domain.enums import ItemStatus
from worker.domain.money import format_bid
from worker.domain.planner import Snapshot


def _state(snapshot: Snapshot | None, *, bid: bool = True, status: bool = True) -> str:
    if snapshot is None:
        return "not on the line item"
    parts = []
    if status:
        parts.append(snapshot.status)
    if bid:
        parts.append(f"bid {format_bid(snapshot.bid)}")
    return ", ".join(parts)


def change(before: Snapshot | None, after: Snapshot | None) -> str:
    """`from X to Y`, naming only what differs when the product is there on both sides."""
    if before is None or after is None:
        return f"from {_state(before)} to {_state(after)}"
    bid = before.bid != after.bid
    status = before.status != after.status
    if not bid and not status:
        bid = status = True
    return (
        f"from {_state(before, bid=bid, status=status)} to {_state(after, bid=bid, status=status)}"
    )


def describe(
    status: ItemStatus,
    before: Snapshot | None,
    after: Snapshot | None,
    *,
    error_kind: str | None = None,
    error_message: str | None = None,
    note: str | None = None,
    dry_run: bool = False,
) -> str:
    said = _said(status, before, after, error_kind, error_message, dry_run)
    return said if note is None else f"{said}; {note}"


def _said(
    status: ItemStatus,
    before: Snapshot | None,
    after: Snapshot | None,
    error_kind: str | None,
    error_message: str | None,
    dry_run: bool,
) -> str:
    if status is ItemStatus.SUCCEEDED:
        return f"{'would change' if dry_run else 'changed'} {change(before, after)}"
    if status is ItemStatus.UNCHANGED:
        return f"unchanged: already {_state(before)}"
    if status is ItemStatus.FAILED:
        reason = error_message or error_kind or "no reason given"
        if error_kind and error_message:
            reason = f"{error_kind}: {error_message}"
        return f"{'would fail' if dry_run else 'failed'}: {reason}"
    if status is ItemStatus.CANCELLED:
        return "cancelled before it was processed"
    return "pending"
