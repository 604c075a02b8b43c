"""The documents every interface answers with, as pydantic models: jobs, their SKUs, pages,
keys, problems. `worker.jobs.documents` holds the requests and re-exports these, so an interface
imports every document from one place."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, WithJsonSchema

from worker.domain.enums import Action, ErrorKind, ItemStatus, JobStatus, Priority, Role
from worker.domain.validation import BID_PATTERN

BidText = Annotated[
    str | None,
    WithJsonSchema({"type": ["string", "null"], "pattern": BID_PATTERN}),
]


class FailureGroup(BaseModel):
    """Failed SKUs of one kind and API code, with one of their messages."""

    error_kind: str | None
    error_code: str | None
    count: int
    example: str | None


class AppliedOptions(BaseModel):
    """The per-job settings a job runs with, the server's defaults filled in."""

    skip_read: bool
    guardrails: bool = Field(description="false: no guardrail applies")
    max_bid: BidText = Field(description="the job's own bid ceiling (null: none)")
    max_change_ratio: BidText = Field(description="null: no ratio limit")
    predict: bool = Field(description="earlier jobs' refusals fail a change without a call")
    clamp_to_min_bid: bool = Field(description="bids below a known minimum are raised to it")
    cancel_requested: bool
    revert_skipped: dict[str, int] = Field(
        description="a revert: the parent's changed SKUs it left out, by reason"
    )


class Notification(BaseModel):
    attempts: int
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


class JobSummary(BaseModel):
    """A job's status, counts, completion ratio, times and ETA: one row of a job list."""

    id: int
    status: JobStatus
    submitted_by: str
    priority: Priority
    dry_run: bool
    total: int
    done: int
    counts: dict[str, int] = Field(description="SKUs by outcome; `pending` until they have one")
    chunks: dict[str, int] = Field(description="chunks (one per line item) by status")
    parent_job_id: int | None
    derived_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    not_before: datetime | None
    completion_ratio: float
    eta_seconds: int | None = Field(
        description="a floor: the calls its unfinished chunks need at the whole rate limit"
    )


class JobDocument(JobSummary):
    """One job: its summary, why SKUs failed, and how its completion notification went."""

    failures: list[FailureGroup]
    notification: Notification | None
    options: AppliedOptions


class DerivedJob(JobDocument):
    """A retry or revert job; `skipped`: the parent's changed SKUs a revert could not restore,
    by reason; `created`: false when the idempotency key answered an earlier job."""

    skipped: dict[str, int]
    created: bool


class Blocker(BaseModel):
    """An earlier job that goes first on line items where this job's chunks wait."""

    job_id: int
    line_item_id: str = Field(description="one of those line items")
    chunks: int = Field(description="this job's chunks waiting behind it")


class Waiting(BaseModel):
    """Why a job's unfinished chunks (one per line item) are not running yet."""

    job_id: int
    running: int
    ready: int = Field(description="due and first in line: waiting for a worker to take them")
    behind: int = Field(description="waiting behind an earlier job's chunk on their line item")
    blockers: list[Blocker] = Field(description="the first of those earlier jobs")
    scheduled: int = Field(description="not due before the job's not_before")
    scheduled_until: datetime | None
    parked: int = Field(description="set aside after transient failures, until parked_until")
    parked_until: datetime | None = Field(description="when the first parked chunk is due")
    last_error: str | None = Field(description="what parked that chunk")


class Submitted(BaseModel):
    """A job just stored, or the earlier one of the same idempotency key (`created` false)."""

    id: int
    total: int
    created: bool
    chunks: int


class ItemDocument(BaseModel):
    """One SKU of a job and what happened to it. Line item ids and bids are strings: 64-bit ids
    and exact decimals do not survive a JavaScript number."""

    row: int
    line_item_id: str
    sku_id: str
    action: Action
    bid_override: BidText
    account_id: str | None
    outcome: ItemStatus
    error_kind: ErrorKind | None
    error_code: str | None
    error_detail: str | None
    bid_before: BidText
    bid_after: BidText
    product_status_before: str | None
    product_status_after: str | None
    attempts: int
    trace_id: str | None
    note: str | None = Field(description="what promobulk changed before sending, and why")
    finished_at: datetime | None
    description: str = Field(description="what happened, or for a dry run what would happen")


class RevertPreview(BaseModel):
    """What a revert of the job would do, before it is made: SKUs it would restore, and those it
    would leave out by reason (see `worker.domain.derive.NotRevertible`)."""

    job_id: int
    revertible: int
    skipped: dict[str, int]


class HistoryEntry(ItemDocument):
    """One change promobulk made (or tried, or planned in a dry run) to a (line item, SKU), with
    the job that carried it."""

    job_id: int
    submitted_by: str
    dry_run: bool
    derived_reason: str | None
    job_created_at: datetime


class HistoryPage(BaseModel):
    """A (line item, SKU)'s changes across jobs, newest job first. Items of jobs past the
    retention (`PROMOBULK_RETENTION_DAYS`) are no longer stored."""

    entries: list[HistoryEntry]
    next_cursor: str | None


class JobPage(BaseModel):
    jobs: list[JobSummary]
    next_cursor: str | None


class ItemPage(BaseModel):
    items: list[ItemDocument]
    next_cursor: str | None


class ApiKey(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class NewApiKey(BaseModel):
    id: int
    name: str
    role: Role
    key: str = Field(description="shown once; only its SHA-256 is kept")


class RowProblem(BaseModel):
    row: int = Field(description="1 is the first data row or item; 0 the job as a whole")
    field: str
    reason: str


class Problem(BaseModel):
    """An error (RFC 9457 problem details); a refused job lists its bad rows."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
    job_id: int | None = Field(default=None, description="the job an idempotency key names")
    total_errors: int | None = None
    errors: list[RowProblem] | None = None


class Health(BaseModel):
    status: str
