"""Job operations that span the repository and dispatch, shared by every interface.

The CLI and the HTTP API call these and only translate: `JobNotFound` is a 404, `NothingToDo` a
409 (a retry with no failed SKU, a revert of a dry run or of a job still running), `InvalidQuery`
a 400, `SubmissionRejected` (from the derived job's validation) a 422.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Generic, TextIO, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker.config import get_settings
from worker.db.repository import ItemFilter, JobView, Repository
from worker.domain.derive import (
    REASON_TEXT,
    NotRevertible,
    ParentItem,
    Row,
    retry_row,
    revert_row,
)
from worker.domain.enums import Action, DerivedReason, ErrorKind, ItemStatus, JobStatus
from worker.domain.guardrails import OPTION_KEYS
from worker.domain.transitions import JOB_TERMINAL
from worker.export import item_dict, write_csv
from worker.submission import Dispatch, JobRequest, Submitted, submit_rows

T = TypeVar("T")

MAX_JOBS_PAGE = 500
MAX_ITEMS_PAGE = 5000
# Per-job settings a retry keeps from its parent (bookkeeping such as a cancel request is not).
INHERITED_OPTIONS = ("skip_read", *OPTION_KEYS)
REVERT_EXAMPLES = 20


class JobNotFound(LookupError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job {job_id}")
        self.job_id = job_id


class NothingToDo(ValueError):
    """The operation would make an empty job, or cannot apply to the job as it is."""


class InvalidQuery(ValueError):
    """A filter value, cursor or limit that cannot be used."""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class Derived(Submitted):
    """A retry or revert job; `skipped`: the parent's changed SKUs a revert could not restore,
    by `NotRevertible` reason (also kept in the child's options as `revert_skipped`)."""

    skipped: dict[str, int] = field(default_factory=dict)


def cancel_job(engine: Engine, job_id: int, dispatch: Dispatch | None = None) -> JobStatus | None:
    """Cancel a job; None if there is no such job. Chunks of other jobs that waited behind the
    cancelled ones on the same line items are dispatched."""
    with Session(engine) as session:
        repo = Repository(session)
        result = repo.request_cancel(job_id)
        if result is None:
            return None
        status, freed = result
        runnable = repo.next_for_line_items(freed)
        session.commit()
    if dispatch is not None and runnable:
        dispatch(runnable)
    return status


# --- cursors: opaque to callers, a keyset underneath -------------------------------------------


def _encode(tag: str, key: int) -> str:
    return base64.urlsafe_b64encode(f"{tag}:{key}".encode()).decode().rstrip("=")


def _decode(tag: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, key = raw.split(":")
        if kind == tag and key.isdigit():
            return int(key)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidQuery(f"cursor {cursor[:40]!r} is not one this listing gave")


def _limit(limit: int, most: int) -> int:
    if not 1 <= limit <= most:
        raise InvalidQuery(f"limit must be between 1 and {most}")
    return limit


def _one_of(kind: str, value: str | None, allowed: type[Any]) -> str | None:
    if value is not None and value not in {v.value for v in allowed}:
        choices = ", ".join(v.value for v in allowed)
        raise InvalidQuery(f"{kind} {value[:40]!r} is not one of {choices}")
    return value


def _view(repo: Repository, job_id: int) -> JobView:
    view = repo.job_view(job_id)
    if view is None:
        raise JobNotFound(job_id)
    return view


# --- listing and export ------------------------------------------------------------------------


def list_jobs(
    engine: Engine,
    *,
    status: str | None = None,
    submitted_by: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[JobView]:
    """Jobs, newest first."""
    _one_of("status", status, JobStatus)
    limit = _limit(limit, MAX_JOBS_PAGE)
    with Session(engine) as session:
        repo = Repository(session)
        ids = repo.job_ids_page(
            status=status,
            submitted_by=submitted_by,
            before=_decode("j", cursor),
            limit=limit + 1,
        )
        views = [_view(repo, i) for i in ids[:limit]]
    more = len(ids) > limit
    return Page(views, _encode("j", views[-1].id) if more else None)


def _filter(
    status: str | None, error_kind: str | None, line_item_id: int | None, sku_id: str | None
) -> ItemFilter:
    _one_of("status", status, ItemStatus)
    _one_of("error kind", error_kind, ErrorKind)
    return ItemFilter(
        statuses=(status,) if status else (),
        error_kinds=(error_kind,) if error_kind else (),
        line_item_id=line_item_id,
        sku_id=sku_id,
    )


def list_items(
    engine: Engine,
    job_id: int,
    *,
    status: str | None = None,
    error_kind: str | None = None,
    line_item_id: int | None = None,
    sku_id: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Page[dict[str, Any]]:
    """A page of a job's items in input order, as JSON-ready dicts (see `export.item_dict`)."""
    flt = _filter(status, error_kind, line_item_id, sku_id)
    limit = _limit(limit, MAX_ITEMS_PAGE)
    after = _decode("i", cursor) or 0
    with Session(engine) as session:
        repo = Repository(session)
        dry_run = _view(repo, job_id).dry_run
        last = repo.last_item_id(job_id)
        rows = (
            []
            if last is None
            else repo.items_page(job_id, flt, after=after, last=last, limit=limit + 1)
        )
    items = [item_dict(r, dry_run=dry_run) for r in rows[:limit]]
    more = len(rows) > limit
    return Page(items, _encode("i", rows[limit - 1].id) if more else None)


def iter_items(
    engine: Engine,
    job_id: int,
    *,
    status: str | None = None,
    error_kind: str | None = None,
    line_item_id: int | None = None,
    sku_id: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Every matching item as a JSON-ready dict, streamed (for a JSON export of any size).
    A bad filter or a missing job raises here, before the first item."""
    flt = _filter(status, error_kind, line_item_id, sku_id)
    with Session(engine) as session:
        dry_run = _view(Repository(session), job_id).dry_run
    return _stream_dicts(engine, job_id, flt, dry_run=dry_run)


def _stream_dicts(
    engine: Engine, job_id: int, flt: ItemFilter, *, dry_run: bool
) -> Iterator[dict[str, Any]]:
    with Session(engine) as session:
        for row in Repository(session).iter_filtered_items(job_id, flt):
            yield item_dict(row, dry_run=dry_run)


def export_items_csv(
    engine: Engine,
    job_id: int,
    out: TextIO,
    *,
    status: str | None = None,
    error_kind: str | None = None,
    line_item_id: int | None = None,
    sku_id: str | None = None,
) -> int:
    """Write the matching items as CSV (see `worker.export`), streamed; returns rows written."""
    flt = _filter(status, error_kind, line_item_id, sku_id)
    with Session(engine) as session:
        repo = Repository(session)
        _view(repo, job_id)
        return write_csv(repo.iter_filtered_items(job_id, flt), out)


# --- derived jobs: retry, revert ---------------------------------------------------------------


def _parent_item(row: Any) -> ParentItem:
    return ParentItem(
        line_item_id=int(row.line_item_id),
        sku_id=row.sku_id,
        account_id=row.account_id,
        action=Action(row.action),
        desired_bid=row.desired_bid,
        bid_before=row.bid_before,
        status_before=row.product_status_before,
    )


def _finished_parent(repo: Repository, job_id: int, what: str) -> JobView:
    view = _view(repo, job_id)
    if view.status not in JOB_TERMINAL:
        raise NothingToDo(f"job {job_id} is {view.status.value}: {what} it once it has finished")
    return view


def retry_failed(
    engine: Engine,
    job_id: int,
    *,
    error_kinds: Sequence[str] | None = None,
    submitted_by: str,
    dispatch: Dispatch | None,
    options: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Derived:
    """A child job of exactly the parent's failed SKUs (only these error kinds, when given),
    with the same actions and bids. It keeps the parent's priority, dry-run flag and per-job
    settings; `options` overrides them (e.g. `{"max_change_ratio": 5}` for guardrail failures)."""
    for kind in error_kinds or ():
        _one_of("error kind", kind, ErrorKind)
    flt = ItemFilter(statuses=(ItemStatus.FAILED,), error_kinds=tuple(error_kinds or ()))
    with Session(engine) as session:
        repo = Repository(session)
        view = _finished_parent(repo, job_id, "retry")
        if repo.count_items(job_id, flt) == 0:
            which = f" of kind {', '.join(flt.error_kinds)}" if flt.error_kinds else ""
            raise NothingToDo(f"job {job_id} has no failed SKUs{which} to retry")
        inherited = repo.job_options(job_id) or {}
    request = JobRequest(
        submitted_by=submitted_by,
        idempotency_key=idempotency_key,
        priority=view.priority,
        dry_run=view.dry_run,
        options={
            **{k: v for k, v in inherited.items() if k in INHERITED_OPTIONS},
            **(options or {}),
        },
        parent_job_id=job_id,
        derived_reason=DerivedReason.RETRY,
    )
    with Session(engine) as reading:
        rows = (
            retry_row(_parent_item(r)) for r in Repository(reading).iter_filtered_items(job_id, flt)
        )
        submitted = submit_rows(
            engine, rows, request, max_bid=get_settings().max_bid, dispatch=dispatch
        )
    return Derived(**vars(submitted))


@dataclass
class _Skipped:
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
        return "; ".join(
            f"{n} SKU(s): {REASON_TEXT[NotRevertible(r)]}" for r, n in self.counts.most_common()
        )


def revert_job(
    engine: Engine,
    job_id: int,
    *,
    submitted_by: str,
    dispatch: Dispatch | None,
    idempotency_key: str | None = None,
) -> Derived:
    """A child job that puts back the recorded before-state of every SKU the parent changed.

    SKUs one action cannot restore are left out and counted by reason (`derive.NotRevertible`).
    Guardrails are off for the child: every target is a bid the SKU had before. Targets are
    absolute, so changes made to those SKUs since the parent ran are overwritten too.
    """
    flt = ItemFilter(statuses=(ItemStatus.SUCCEEDED,))
    with Session(engine) as session:
        view = _finished_parent(Repository(session), job_id, "revert")
    if view.dry_run:
        raise NothingToDo(f"job {job_id} was a dry run: it changed nothing")
    request = JobRequest(
        submitted_by=submitted_by,
        idempotency_key=idempotency_key,
        priority=view.priority,
        options={"guardrails": False},
        parent_job_id=job_id,
        derived_reason=DerivedReason.REVERT,
    )
    skipped = _Skipped()

    def rows(reading: Repository) -> Iterator[Row]:
        for r in reading.iter_filtered_items(job_id, flt):
            item = _parent_item(r)
            row = revert_row(item)
            if isinstance(row, NotRevertible):
                skipped.add(item, row)
            else:
                yield row

    with Session(engine) as reading:
        revertible = rows(Repository(reading))
        first = next(revertible, None)
        if first is None:
            why = f" ({skipped.summary()})" if skipped.counts else ""
            raise NothingToDo(f"job {job_id} changed no SKU that can be reverted{why}")
        submitted = submit_rows(
            engine,
            chain([first], revertible),
            request,
            max_bid=get_settings().max_bid,
            dispatch=dispatch,
        )
    if skipped.counts and submitted.created:
        with Session(engine) as session:
            Repository(session).merge_job_options(
                submitted.job_id,
                {
                    "revert_skipped": {
                        "count": sum(skipped.counts.values()),
                        "by_reason": dict(skipped.counts),
                        "examples": skipped.examples,
                    }
                },
            )
            session.commit()
    if not submitted.created:  # an earlier revert with this key: report what it skipped
        with Session(engine) as session:
            earlier = (Repository(session).job_options(submitted.job_id) or {}).get(
                "revert_skipped", {}
            )
        skipped.counts = Counter(earlier.get("by_reason", {}))
    return Derived(**vars(submitted), skipped=dict(skipped.counts))
