"""How an item leaves the database: its document, or a CSV row that can be submitted again.

The CSV keeps the input columns first (`line_item_id,sku_id,action,bid_override,account_id`), so
a failed-rows export can be fixed and submitted as it is: submission ignores the added columns.
Numbers are written as plain numbers; every text cell goes through `escape_cell`, which
submission undoes, so no cell runs as a spreadsheet formula and no SKU changes on the way back.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TextIO

from worker.db.records import ItemRow
from worker.domain.describe import describe
from worker.domain.enums import Action, ErrorKind, ItemStatus
from worker.domain.planner import Snapshot
from worker.domain.spreadsheet import escape_cell
from worker.domain.validation import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from worker.jobs.documents import HistoryEntry, ItemDocument

EXPORT_COLUMNS = (
    *REQUIRED_COLUMNS,
    *OPTIONAL_COLUMNS,
    "outcome",
    "error_kind",
    "error_code",
    "error_detail",
    "bid_before",
    "bid_after",
    "product_status_before",
    "product_status_after",
    "note",
)
_NUMBERS = frozenset({"line_item_id", "bid_override", "bid_before", "bid_after"})


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


def _snapshot(bid: Decimal | None, status: str | None) -> Snapshot | None:
    return None if status is None else Snapshot(bid, status)


def _export_values(row: ItemRow) -> dict[str, Any]:
    """An item's values under the export's column names, in their order."""
    return {
        "line_item_id": row.line_item_id,
        "sku_id": row.sku_id,
        "action": row.action,
        "bid_override": _decimal(row.desired_bid),
        "account_id": row.account_id,
        "outcome": row.status,
        "error_kind": row.error_kind,
        "error_code": row.error_code,
        "error_detail": row.error_message,
        "bid_before": _decimal(row.bid_before),
        "bid_after": _decimal(row.bid_after),
        "product_status_before": row.product_status_before,
        "product_status_after": row.product_status_after,
        "note": row.note,
    }


def item_document(row: ItemRow, *, dry_run: bool) -> ItemDocument:
    """An item as its document, with a sentence saying what happened or would happen. Built
    without validation: the row comes from our own table, and an export may hold a million."""
    status = ItemStatus(row.status)
    return ItemDocument.model_construct(
        row=row.row_number,
        line_item_id=str(row.line_item_id),
        sku_id=row.sku_id,
        action=Action(row.action),
        bid_override=_decimal(row.desired_bid),
        account_id=row.account_id,
        outcome=status,
        error_kind=None if row.error_kind is None else ErrorKind(row.error_kind),
        error_code=row.error_code,
        error_detail=row.error_message,
        bid_before=_decimal(row.bid_before),
        bid_after=_decimal(row.bid_after),
        product_status_before=row.product_status_before,
        product_status_after=row.product_status_after,
        attempts=row.attempts,
        trace_id=row.trace_id,
        note=row.note,
        finished_at=row.finished_at,
        description=describe(
            status,
            _snapshot(row.bid_before, row.product_status_before),
            _snapshot(row.bid_after, row.product_status_after),
            error_kind=row.error_kind,
            error_message=row.error_message,
            note=row.note,
            dry_run=dry_run,
        ),
    )


def history_entry(row: ItemRow) -> HistoryEntry:
    """An item with its job's submitter, dry-run flag, origin and creation time (a row of
    `ItemRepository.history`)."""
    item = item_document(row, dry_run=row.dry_run)
    return HistoryEntry.model_construct(
        **dict(item),
        job_id=row.job_id,
        submitted_by=row.submitted_by,
        dry_run=row.dry_run,
        derived_reason=row.derived_reason,
        job_created_at=row.job_created_at,
    )


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column in _NUMBERS:
        return str(value)
    return escape_cell(str(value))


def write_csv(rows: Iterable[ItemRow], out: TextIO) -> int:
    """Write the header and one line per item as it comes; returns the number of items."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for row in rows:
        values = _export_values(row)
        writer.writerow([_cell(c, values[c]) for c in EXPORT_COLUMNS])
        count += 1
    return count
