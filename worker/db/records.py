"""What the repositories return: plain records, no presentation.

A job is its ORM row plus the progress aggregated from its chunks; everything else is a small
frozen dataclass. Items leave as SQLAlchemy rows (`ItemRow`): a million-item export must not
build a Python object per row on top of the one the driver already made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import sqlalchemy as sa

from worker.db.models import Job
from worker.domain.enums import ItemStatus, JobStatus, Priority

ItemRow: TypeAlias = sa.Row[Any]
ChunkRef: TypeAlias = tuple[int, Priority]
# Sends chunks to the workers; called only after the chunks' rows are committed.
Dispatch: TypeAlias = Callable[[Sequence[ChunkRef]], None]


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job's row, its SKUs by outcome (`pending` included until it ends) and its chunks by
    status."""

    row: Job
    counts: dict[str, int]
    chunks: dict[str, int]

    @property
    def id(self) -> int:
        return self.row.id

    @property
    def status(self) -> JobStatus:
        return JobStatus(self.row.status)

    @property
    def priority(self) -> Priority:
        return Priority(self.row.priority)

    @property
    def total(self) -> int:
        return self.row.total

    @property
    def dry_run(self) -> bool:
        return self.row.dry_run

    @property
    def done(self) -> int:
        return sum(n for s, n in self.counts.items() if s != ItemStatus.PENDING)


@dataclass(frozen=True, slots=True)
class ClaimedChunk:
    id: int
    job_id: int
    line_item_id: int
    attempt: int
    priority: Priority
    options: dict[str, Any]
    cancel_requested: bool
    lease_seconds: int
    last_error: str | None = None  # what ended the previous attempt
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class FinishedChunk:
    counts: dict[str, int]
    job_status: JobStatus | None  # set when this chunk was the job's last
    next_chunks: list[tuple[int, Priority]]  # the chunk now first in line for the line item


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A cancel's effect: the job's status now, and the line items its stopped chunks freed."""

    status: JobStatus
    freed: list[int]


@dataclass(frozen=True, slots=True)
class FailureGroup:
    error_kind: str | None
    error_code: str | None
    count: int
    example: str | None


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A row repeating the (line item, SKU) of an earlier row of the same job."""

    row: int
    first_row: int
    line_item_id: int
    sku_id: str


@dataclass(frozen=True, slots=True)
class ItemFilter:
    """Which items of a job to list or export; empty tuples and None match everything."""

    statuses: tuple[str, ...] = ()
    error_kinds: tuple[str, ...] = ()
    line_item_id: int | None = None
    sku_id: str | None = None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs to list besides status and submitter; None matches everything."""

    created_after: datetime | None = None  # created at or after
    created_before: datetime | None = None
    dry_run: bool | None = None
    parent_job_id: int | None = None


NO_JOB_FILTER = JobFilter()


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: int
    name: str
    prefix: str
    role: str
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NotificationState:
    attempts: int
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Blocker:
    """An earlier job whose chunks go first on line items where a job's chunks wait."""

    job_id: int
    line_item_id: int  # one of those line items
    chunks: int  # the waiting job's chunks behind it


@dataclass(frozen=True, slots=True)
class WaitingRecord:
    """Where a job's unfinished chunks are, and why the ones not running wait."""

    running: int
    ready: int  # due and first in line: for a worker to take
    behind: int
    blockers: list[Blocker]  # the first few
    scheduled: int
    scheduled_until: datetime | None
    parked: int
    parked_until: datetime | None
    last_error: str | None  # of the parked chunk due first
