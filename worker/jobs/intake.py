"""How rows get in: read them (a CSV by column position, or mappings), check each one, stream the
good ones into COPY, find duplicates in SQL, make the chunks: all inside the caller's
transaction, which commits only a job with no problem at all.

A 1,000,000-row file never exists as a list of Python objects: rows flow from the source through
`worker.domain.validation` into COPY. Clean rows of plain text take a short path that is
checked against the full rules (`tests/unit/domain`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy.orm import Session

from worker.db.chunks import ChunkRepository
from worker.db.items import ItemRepository
from worker.db.jobs import JobRepository
from worker.db.records import Duplicate
from worker.domain.spreadsheet import unescape_cell
from worker.domain.validation import (
    REQUIRED_COLUMNS,
    ItemSpec,
    RowError,
    missing_columns,
    validate_values,
)
from worker.jobs.errors import InvalidField, SubmissionRejected

ERROR_CAP = 100
ANALYZE_AFTER_ROWS = 20_000
# One row's line_item_id, sku_id, action, bid_override, account_id, as they came.
Values = tuple[object, object, object, object, object]


@dataclass(frozen=True, slots=True)
class Stored:
    job_id: int
    total: int
    chunks: int


class RowChecker:
    """Turns raw rows into ItemSpecs, keeping the first errors and counting all of them."""

    def __init__(self, max_bid: Decimal) -> None:
        self.max_bid = max_bid
        self.errors: list[RowError] = []
        self.total_errors = 0
        self.rows = 0

    def add(self, errors: Iterable[RowError]) -> None:
        for error in errors:
            self.total_errors += 1
            if len(self.errors) < ERROR_CAP:
                self.errors.append(error)

    def specs(self, rows: Iterable[Values]) -> Iterator[ItemSpec]:
        max_bid, add = self.max_bid, self.add
        number = 0
        for number, (line_item, sku, action, bid, account) in enumerate(rows, start=1):
            result = validate_values(number, line_item, sku, action, bid, account, max_bid=max_bid)
            if isinstance(result, ItemSpec):
                yield result
            else:
                add(result)
        self.rows = number

    def rejection(self) -> SubmissionRejected:
        return SubmissionRejected(sorted(self.errors, key=lambda e: e.row), self.total_errors)


def _duplicate(d: Duplicate) -> RowError:
    return RowError(
        d.row,
        "sku_id",
        f"line item {d.line_item_id} and SKU {d.sku_id!r} already appear in row {d.first_row}",
    )


def store(
    session: Session,
    rows: Iterable[Values],
    columns: Mapping[str, Any],
    *,
    max_bid: Decimal,
    extra_options: Callable[[], Mapping[str, Any]] | None = None,
) -> Stored:
    """Insert the job (`columns` of the `jobs` row), its checked rows and its chunks; raise
    SubmissionRejected, leaving the caller to roll back, when any row has a problem.
    `extra_options()` is merged into the job's options in the same transaction, once every row
    has been read (what a revert left out is known only then)."""
    job_id = JobRepository(session).insert(columns)
    items = ItemRepository(session)
    checker = RowChecker(max_bid)
    stored = items.copy(job_id, checker.specs(rows))
    if checker.rows == 0:
        checker.add([RowError(0, "rows", "the job has no rows")])
    duplicates, n_duplicates = items.duplicates(job_id, ERROR_CAP)
    checker.add(_duplicate(d) for d in duplicates)
    checker.total_errors += n_duplicates - len(duplicates)
    if checker.total_errors:
        raise checker.rejection()
    jobs = JobRepository(session)
    jobs.set_total(job_id, stored)
    if extra_options is not None and (extra := extra_options()):
        jobs.merge_options(job_id, extra)
    chunk_ids = ChunkRepository(session).make(job_id)
    return Stored(job_id, stored, len(chunk_ids))


def mapping_values(rows: Iterable[Mapping[str, object]]) -> Iterator[Values]:
    """Rows given as mappings keyed by the CSV's column names (JSON items, derived rows)."""
    for row in rows:
        yield (
            row.get("line_item_id"),
            row.get("sku_id"),
            row.get("action"),
            row.get("bid_override"),
            row.get("account_id"),
        )


def json_items(items: Any) -> list[Mapping[str, object]]:
    """A JSON body's `items` as rows; entries that are not objects are refused with their row
    numbers (row 1 is the first item), as bad CSV rows are."""
    if not isinstance(items, list):
        raise InvalidField("items", "must be an array of objects")
    bad = [
        RowError(n, "item", "must be an object")
        for n, item in enumerate(items, start=1)
        if not isinstance(item, dict)
    ]
    if bad:
        raise SubmissionRejected(bad[:ERROR_CAP], len(bad))
    return items


def csv_values(stream: TextIO) -> Iterator[Values]:
    """A CSV with header `line_item_id,sku_id,action,bid_override[,account_id]`: each row's five
    values by column position. Other columns are ignored, so an exported results file can be
    fixed and submitted again as it is; the export's protection against spreadsheet formulas is
    undone on the text columns. The header is checked before the first row is asked for."""
    reader = csv.reader(stream)
    header = [name.strip() for name in next(reader, [])]
    missing = missing_columns(header)
    if missing:
        raise SubmissionRejected(
            [RowError(0, column, "column is missing from the header") for column in missing]
        )
    return _csv_rows(reader, header)


def _csv_rows(reader: Iterator[list[str]], header: list[str]) -> Iterator[Values]:
    li, sku, action, bid = (header.index(c) for c in REQUIRED_COLUMNS)
    account = header.index("account_id") if "account_id" in header else None
    width = max(li, sku, action, bid, -1 if account is None else account) + 1
    for cells in reader:
        if not cells:
            continue  # a blank line, as DictReader skips it
        row: list[str | None] = [*cells, *([None] * (width - len(cells)))]
        sku_id = row[sku]
        if sku_id and sku_id[0] == "'":
            sku_id = unescape_cell(sku_id)
        account_id = None if account is None else row[account]
        if account_id and account_id[0] == "'":
            account_id = unescape_cell(account_id)
        yield row[li], sku_id, row[action], row[bid], account_id
