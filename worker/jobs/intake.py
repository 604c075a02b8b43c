"""How rows get in: read them (a CSV by column position, or mappings), check each one, stream the
good ones into COPY, find duplicates in SQL, make the chunks: all inside the caller's
transaction, which commits only a job with no problem at all.

A 1,000,000-row file never exists as a list of Python objects: rows flow from the source through
`worker.domain.validation` into COPY. Clean rows of plain text take a short path that is
checked against the full rules (`tests/unit/domain`).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO, TextIO

from sqlalchemy.orm import Session

from worker.db.chunks import ChunkRepository
from worker.db.items import ItemRepository
from worker.db.jobs import JobRepository
from worker.db.records import Duplicate
from worker.domain.spreadsheet import unescape_cell
from worker.domain.validation import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    ItemSpec,
    RowError,
    missing_columns,
    shown,
    validate_values,
)
from worker.jobs.errors import InvalidField, SubmissionRejected

ERROR_CAP = 100
ANALYZE_AFTER_ROWS = 20_000
# Past Python's 131,072 characters a CSV field is an error of the reader, which cannot say which
# field it was; up to this size the rules say it (an SKU is at most 500 characters).
FIELD_MAX_CHARS = 8 * 1024 * 1024
# One row's line_item_id, sku_id, action, bid_override, account_id, as they came.
Values = tuple[object, object, object, object, object]


@dataclass(frozen=True, slots=True)
class Stored:
    job_id: int
    total: int
    chunks: int


csv.field_size_limit(max(csv.field_size_limit(), FIELD_MAX_CHARS))


class Unreadable(Exception):
    """The rest of the input cannot be read (not UTF-8, a field past every limit): the rows
    read so far are checked, this one is refused, and reading stops."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row refused before its values are looked at (more fields than the header)."""

    field: str
    reason: str


Rows = Iterable[Values | BadRow]


class RowChecker:
    """Turns raw rows into ItemSpecs, keeping the first errors and counting all of them, and a
    digest of the request: its fields and every row as the rules read it (so `0.50` and `0.5`,
    or a CSV and the same rows in JSON, are the same request)."""

    def __init__(self, max_bid: Decimal, fields_digest: str) -> None:
        self.max_bid = max_bid
        self.errors: list[RowError] = []
        self.total_errors = 0
        self.rows = 0
        self.stopped = False  # reading stopped at an unreadable row
        self._digest = hashlib.sha256(fields_digest.encode())

    @property
    def digest(self) -> str:
        return self._digest.hexdigest()

    def _hash(self, spec: ItemSpec) -> None:
        bid = "" if spec.bid is None else format(spec.bid.normalize(), "f")
        # Tabs and newlines cannot be in a value (control characters are refused).
        line = (
            f"{spec.line_item_id}\t{spec.sku_id}\t{spec.action}\t{bid}\t{spec.account_id or ''}\n"
        )
        self._digest.update(line.encode("utf-8"))

    def check_all(self, rows: Rows) -> str:
        """Read every row without storing it; the request's digest, or SubmissionRejected."""
        for _ in self.specs(rows):
            pass
        if self.rows == 0 and not self.stopped:
            self.add([RowError(0, "rows", "the job has no rows")])
        if self.total_errors:
            raise self.rejection()
        return self.digest

    def add(self, errors: Iterable[RowError]) -> None:
        for error in errors:
            self.total_errors += 1
            if len(self.errors) < ERROR_CAP:
                self.errors.append(error)

    def specs(self, rows: Rows) -> Iterator[ItemSpec]:
        max_bid, add = self.max_bid, self.add
        number = 0
        source = iter(rows)
        while True:
            try:
                row = next(source)
            except StopIteration:
                break
            except Unreadable as unreadable:
                add([RowError(number + 1, unreadable.field, unreadable.reason)])
                self.stopped = True
                break
            number += 1
            if isinstance(row, BadRow):
                add([RowError(number, row.field, row.reason)])
                continue
            line_item, sku, action, bid, account = row
            result = validate_values(number, line_item, sku, action, bid, account, max_bid=max_bid)
            if isinstance(result, ItemSpec):
                self._hash(result)
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
    rows: Rows,
    columns: Mapping[str, Any],
    *,
    max_bid: Decimal,
    fields_digest: str,
    extra_options: Callable[[], Mapping[str, Any]] | None = None,
) -> Stored:
    """Insert the job (`columns` of the `jobs` row), its checked rows and its chunks; raise
    SubmissionRejected, leaving the caller to roll back, when any row has a problem.
    `extra_options()` is merged into the job's options in the same transaction, once every row
    has been read (what a revert left out is known only then)."""
    job_id = JobRepository(session).insert(columns)
    items = ItemRepository(session)
    checker = RowChecker(max_bid, fields_digest)
    stored = items.copy(job_id, checker.specs(rows))
    if checker.rows == 0 and not checker.stopped:
        checker.add([RowError(0, "rows", "the job has no rows")])
    duplicates, n_duplicates = items.duplicates(job_id, ERROR_CAP)
    checker.add(_duplicate(d) for d in duplicates)
    checker.total_errors += n_duplicates - len(duplicates)
    if checker.total_errors:
        raise checker.rejection()
    jobs = JobRepository(session)
    jobs.set_total(job_id, stored, checker.digest)
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


class _NotUtf8(Exception):
    def __init__(self, line: int, error: UnicodeDecodeError) -> None:
        byte = error.object[error.start : error.start + 1].hex()
        super().__init__(
            f"line {line} of the file is not UTF-8 (byte 0x{byte} at position"
            f" {error.start + 1}): save the file as UTF-8 and send it again"
        )


def _lines(stream: BinaryIO | TextIO) -> Iterator[str]:
    """The stream's lines as text, endings kept (what csv wants from `newline=""`). Bytes are
    decoded a line at a time, so a byte that is no UTF-8 is named by its line."""
    number = 0
    for line in stream:
        number += 1
        if isinstance(line, str):
            yield line.removeprefix("\ufeff") if number == 1 else line
            continue
        raw = bytes(line)
        try:
            yield (raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw).decode("utf-8")
        except UnicodeDecodeError as error:
            raise _NotUtf8(number, error) from None


def csv_values(stream: BinaryIO | TextIO) -> Iterator[Values | BadRow]:
    """A CSV with header `line_item_id,sku_id,action,bid_override[,account_id]`: each row's five
    values by column position. Other columns are ignored, so an exported results file can be
    fixed and submitted again as it is; the export's protection against spreadsheet formulas is
    undone on the text columns. The header is checked before the first row is asked for.
    `stream` is bytes (UTF-8, with or without a BOM) or text opened with `newline=""`."""
    reader = csv.reader(_lines(stream))
    try:
        header = [name.strip() for name in next(reader, [])]
    except (_NotUtf8, csv.Error) as unreadable:
        raise SubmissionRejected([RowError(0, "header", _unreadable(unreadable))]) from None
    _check_header(header)
    return _csv_rows(reader, header)


def _check_header(header: list[str]) -> None:
    missing = missing_columns(header)
    if missing and len(header) == 1:
        for name, separator in (("semicolons", ";"), ("tabs", "\t")):
            if separator in header[0]:
                raise SubmissionRejected(
                    [
                        RowError(
                            0,
                            "header",
                            f"the file is separated by {name}, not commas: the header read was"
                            f" {shown(header[0])}",
                        )
                    ]
                )
    errors = [RowError(0, column, "column is missing from the header") for column in missing]
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in seen and (name in REQUIRED_COLUMNS or name in OPTIONAL_COLUMNS):
            reason = f"appears twice in the header (columns {seen[name]} and {position})"
            errors.append(RowError(0, name, reason))
        seen.setdefault(name, position)
    if errors:
        raise SubmissionRejected(errors)


def _unreadable(error: _NotUtf8 | csv.Error) -> str:
    if isinstance(error, _NotUtf8):
        return str(error)
    return f"cannot be read as CSV: {error}"


def _csv_rows(reader: Iterator[list[str]], header: list[str]) -> Iterator[Values | BadRow]:
    li, sku, action, bid = (header.index(c) for c in REQUIRED_COLUMNS)
    account = header.index("account_id") if "account_id" in header else None
    width = max(li, sku, action, bid, -1 if account is None else account) + 1
    while True:
        try:
            cells = next(reader, None)
        except (_NotUtf8, csv.Error) as unreadable:
            raise Unreadable("row", _unreadable(unreadable)) from None
        if cells is None:
            return
        if not cells:
            continue  # a blank line, as DictReader skips it
        if len(cells) > len(header):
            yield BadRow(
                "row",
                f"has {len(cells)} fields where the header has {len(header)}"
                " (a decimal comma in a bid? write it with a dot, or quote the field)",
            )
            continue
        row: list[str | None] = [*cells, *([None] * (width - len(cells)))]
        sku_id = row[sku]
        if sku_id and sku_id[0] == "'":
            sku_id = unescape_cell(sku_id)
        account_id = None if account is None else row[account]
        if account_id and account_id[0] == "'":
            account_id = unescape_cell(account_id)
        yield row[li], sku_id, row[action], row[bid], account_id
