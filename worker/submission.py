"""The one way a job gets in: validate every row, store all or nothing, dispatch after commit.

Every interface (CLI, HTTP API, Python client, Celery task) calls `submit_rows` or `submit_csv`.
Rows stream from the source through validation into COPY, so a 1,000,000-row file never exists
as a list of Python objects; duplicates are found in SQL inside the same transaction.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from worker.db.repository import Repository
from worker.domain.enums import Priority
from worker.domain.guardrails import BadOption, guardrails_from_options
from worker.domain.spreadsheet import unescape_cell
from worker.domain.validation import (
    REQUIRED_COLUMNS,
    ItemSpec,
    RowError,
    missing_columns,
    validate_values,
)

Dispatch = Callable[[Sequence[tuple[int, Priority]]], None]
ERROR_CAP = 100
ANALYZE_AFTER_ROWS = 20_000
# One row's line_item_id, sku_id, action, bid_override, account_id, as they came.
Values = tuple[object, object, object, object, object]


@dataclass(frozen=True)
class JobRequest:
    submitted_by: str = "cli"
    idempotency_key: str | None = None
    priority: Priority = Priority.NORMAL
    dry_run: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    parent_job_id: int | None = None
    derived_reason: str | None = None
    not_before: datetime | None = None
    callback_url: str | None = None


@dataclass(frozen=True)
class Submitted:
    job_id: int
    total: int
    created: bool
    chunks: int


class SubmissionRejected(Exception):
    """Nothing was stored. `errors`: the first ERROR_CAP problems; `total_errors`: all of them."""

    def __init__(self, errors: Sequence[RowError], total_errors: int) -> None:
        self.errors = list(errors)
        self.total_errors = total_errors
        shown = "; ".join(str(e) for e in self.errors[:5])
        more = f" (and {total_errors - 5} more)" if total_errors > 5 else ""
        super().__init__(f"job rejected, {total_errors} problem(s): {shown}{more}")


class _Validator:
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


def submit_rows(
    engine: Engine,
    rows: Iterable[Mapping[str, object]],
    request: JobRequest,
    *,
    max_bid: Decimal,
    dispatch: Dispatch | None = None,
) -> Submitted:
    """Store a job from rows (dicts keyed by the CSV column names) and dispatch its chunks."""
    values = (
        (
            row.get("line_item_id"),
            row.get("sku_id"),
            row.get("action"),
            row.get("bid_override"),
            row.get("account_id"),
        )
        for row in rows
    )
    return _submit(engine, values, request, max_bid=max_bid, dispatch=dispatch)


def _submit(
    engine: Engine,
    rows: Iterable[Values],
    request: JobRequest,
    *,
    max_bid: Decimal,
    dispatch: Dispatch | None,
) -> Submitted:
    try:
        guardrails_from_options(request.options, Decimal(1))
    except BadOption as bad:
        raise SubmissionRejected([RowError(0, f"options.{bad.field}", bad.reason)], 1) from None
    with Session(engine) as session:
        repo = Repository(session)
        if request.idempotency_key:
            existing = repo.find_job_by_key(request.submitted_by, request.idempotency_key)
            if existing is not None:
                return _existing(repo, existing)
        validator = _Validator(max_bid)
        try:
            job_id = repo.insert_job(
                submitted_by=request.submitted_by,
                idempotency_key=request.idempotency_key,
                priority=request.priority,
                dry_run=request.dry_run,
                options=request.options,
                parent_job_id=request.parent_job_id,
                derived_reason=request.derived_reason,
                not_before=request.not_before,
                callback_url=request.callback_url,
            )
        except IntegrityError:
            # Another submit with the same key won the race: answer with its job.
            session.rollback()
            assert request.idempotency_key is not None
            winner = repo.find_job_by_key(request.submitted_by, request.idempotency_key)
            assert winner is not None
            return _existing(repo, winner)
        stored = repo.copy_items(job_id, validator.specs(rows))
        if validator.rows == 0:
            validator.add([RowError(0, "rows", "the job has no rows")])
        duplicates, n_duplicates = repo.duplicate_rows(job_id, ERROR_CAP)
        validator.add(duplicates)
        validator.total_errors += n_duplicates - len(duplicates)
        if validator.total_errors:
            session.rollback()
            validator.errors.sort(key=lambda e: e.row)
            raise SubmissionRejected(validator.errors, validator.total_errors)
        chunk_ids = repo.make_chunks(job_id, stored)
        session.commit()
        if stored >= ANALYZE_AFTER_ROWS:
            repo.refresh_statistics()
            session.commit()
        runnable = repo.runnable_chunks(job_id)
        session.commit()
    if dispatch is not None:
        dispatch(runnable)
    return Submitted(job_id=job_id, total=stored, created=True, chunks=len(chunk_ids))


def _existing(repo: Repository, job_id: int) -> Submitted:
    view = repo.job_view(job_id)
    assert view is not None
    return Submitted(
        job_id=job_id, total=view.total, created=False, chunks=sum(view.chunks.values())
    )


def submit_csv(
    engine: Engine,
    stream: TextIO,
    request: JobRequest,
    *,
    max_bid: Decimal,
    dispatch: Dispatch | None = None,
) -> Submitted:
    """A CSV with header `line_item_id,sku_id,action,bid_override[,account_id]`; extra columns are
    ignored, so an exported results file can be fixed and submitted again as it is."""
    reader = csv.reader(stream)
    header = [name.strip() for name in next(reader, [])]
    missing = missing_columns(header)
    if missing:
        raise SubmissionRejected(
            [RowError(0, column, "column is missing from the header") for column in missing],
            len(missing),
        )
    return _submit(engine, _csv_values(reader, header), request, max_bid=max_bid, dispatch=dispatch)


def _csv_values(reader: Iterator[list[str]], header: list[str]) -> Iterator[Values]:
    """Each CSV row's five values by column position (a short row's missing cells are None),
    with the export's protection against spreadsheet formulas undone on the text columns."""
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
