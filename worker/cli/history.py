"""`promobulk history LINE_ITEM SKU`: a (line item, SKU)'s changes across jobs, newest first."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from worker.cli.app import AsJson, app, console, jobs, print_json, reports
from worker.domain.money import format_bid
from worker.jobs.documents import HistoryEntry


def _state(bid: str | None, status: str | None) -> str:
    if status is None:
        return "absent"
    return f"{status}, bid {format_bid(None) if bid is None else bid}"


def _table(line_item_id: int, sku_id: str, entries: list[HistoryEntry]) -> Table:
    table = Table(title=escape(f"line item {line_item_id}, SKU {sku_id}"), min_width=60)
    for column in ("when", "job", "by", "action", "before", "after", "outcome"):
        table.add_column(column, overflow="fold", justify="right" if column == "job" else "left")
    for e in entries:
        when = e.finished_at or e.job_created_at
        table.add_row(
            when.strftime("%Y-%m-%d %H:%M:%S %Z"),
            str(e.job_id) + (" (dry run)" if e.dry_run else ""),
            escape(e.submitted_by),
            e.action.value + (f" {e.bid_override}" if e.bid_override else ""),
            _state(e.bid_before, e.product_status_before),
            _state(e.bid_after, e.product_status_after),
            escape(e.description),
        )
    return table


@app.command()
@reports
def history(
    line_item: int,
    sku: str,
    limit: Annotated[int, typer.Option(help="Entries per page")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next_cursor of the page before")] = None,
    as_json: AsJson = False,
) -> None:
    """Every change promobulk made to a SKU of a line item, across jobs, newest first: when,
    which job, who submitted it, the action, before and after, the outcome."""
    page = jobs().history(line_item, sku, cursor=cursor, limit=limit)
    if as_json:
        print_json(page)
        return
    if not page.entries:
        console.print(f"no change recorded for line item {line_item}, SKU {sku}", markup=False)
        return
    console.print(_table(line_item, sku, page.entries))
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")
