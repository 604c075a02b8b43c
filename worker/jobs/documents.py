"""The documents every interface speaks, as pydantic models: the one source of their fields,
limits and messages. The HTTP API serves them (and its OpenAPI document is generated from
them), the CLI prints them with `--json`, the console renders them, the Celery task takes them.

Rows (a CSV's or a JSON body's `items`) are not parsed through a model: they stream through
`worker.domain.validation`, whose constants these models' schemas reuse, so a million rows
never become a million objects and a bad row is named by its number, CSV or JSON alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)

from worker.domain.enums import Action, ErrorKind, ItemStatus, JobStatus, Priority, Role
from worker.domain.validation import (
    ACCOUNT_MAX_LEN,
    BID_MAX_INTEGER_DIGITS,
    BID_PATTERN,
    INT64_MAX,
    SKU_MAX_LEN,
    shown,
    text_problem,
)
from worker.jobs.errors import InvalidField

KEY_MAX_LEN = 200
URL_MAX_LEN = 2000
NOT_BEFORE_MAX_AHEAD = timedelta(days=366)
NOT_BEFORE_MAX_BEHIND = timedelta(days=31)
# What a ratio or a bid limit can sensibly be; a bid above it would not fit numeric(14, 4).
RATIO_MAX = Decimal(1_000_000)
BID_LIMIT = Decimal(10) ** BID_MAX_INTEGER_DIGITS
MAX_JOBS_PAGE = 500
MAX_ITEMS_PAGE = 5000


def _flag(value: object) -> object:
    """true/false, also as the text a query string or a form carries; nothing looser."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _callback_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        valid = False
    if not valid:
        raise ValueError("must be an absolute http or https URL")
    return value


def _text(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(f"{problem}: {shown(value)}")
    return value


def _not_before(value: datetime) -> datetime:
    """A start the job can have: soon enough to mean something, not so far back that it is a
    typo of the year (and always a time Postgres and Python both hold)."""
    now = datetime.now(UTC)
    if value > now + NOT_BEFORE_MAX_AHEAD:
        raise ValueError(f"must be at most {NOT_BEFORE_MAX_AHEAD.days} days ahead, not {value}")
    if value < now - NOT_BEFORE_MAX_BEHIND:
        raise ValueError(
            f"is more than {NOT_BEFORE_MAX_BEHIND.days} days in the past ({value}): a wrong year?"
        )
    return value


def _decimal(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError("must be a decimal number")
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]
Key = Annotated[str, Field(min_length=1, max_length=KEY_MAX_LEN), AfterValidator(_text)]
BidText = Annotated[
    str | None,
    WithJsonSchema({"type": ["string", "null"], "pattern": BID_PATTERN}),
]
DecimalIn = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    WithJsonSchema({"type": ["string", "number"], "pattern": BID_PATTERN}),
]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests -----------------------------------------------------------------------------------


class JobOptions(Model):
    """Per-job settings, stored with the job and read by the planner (see `domain.guardrails`).

    `max_change_ratio` left out means the server's PROMOBULK_MAX_CHANGE_RATIO; null means no
    ratio limit. Stored as given (`model_dump(exclude_unset=True)`), so the difference lasts.
    """

    skip_read: Flag = Field(
        default=False, description="skip reading line items first (before-values unknown)"
    )
    guardrails: Flag = Field(
        default=True, description="the bid guardrails (max_bid, max_change_ratio) on or off"
    )
    max_bid: Annotated[DecimalIn, Field(ge=0, lt=BID_LIMIT)] | None = Field(
        default=None, description="guardrail: no bid above this (PROMOBULK_MAX_BID always holds)"
    )
    max_change_ratio: Annotated[DecimalIn, Field(ge=1, le=RATIO_MAX)] | None = Field(
        default=None,
        description="guardrail: a new bid at most this many times the current one, either way"
        " (default PROMOBULK_MAX_CHANGE_RATIO; null: no limit)",
    )
    predict: Flag = Field(
        default=True,
        description="fail without a call a change the API refused in an earlier job (a bid"
        " below a SKU's known minimum, a SKU its catalog lacks); this job's own refusals count"
        " always",
    )
    clamp_to_min_bid: Flag = Field(
        default=False,
        description="raise a bid below a SKU's known minimum to that minimum, noted on the SKU",
    )

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class JobFields(Model):
    """A job's fields besides its rows: a JSON body's other members, or a CSV body's query."""

    idempotency_key: Key | None = Field(
        default=None,
        description="the same key and request from the same submitter answer with the same job"
        " (200); the same key with another request is a conflict (409)",
    )
    priority: Priority = Field(
        default=Priority.NORMAL, description="high: a share of the rate limit is kept for it"
    )
    dry_run: Flag = Field(default=False, description="read and plan every SKU, write nothing")
    callback_url: (
        Annotated[
            str, Field(max_length=URL_MAX_LEN), AfterValidator(_text), AfterValidator(_callback_url)
        ]
        | None
    ) = Field(
        default=None,
        description="POSTed the job document once it ends, signed with"
        " `X-Promobulk-Signature: sha256=<HMAC-SHA256 of the body>`",
        json_schema_extra={"format": "uri", "pattern": "^https?://[^/?#@\\s]+"},
    )
    not_before: Annotated[AwareDatetime, AfterValidator(_not_before)] | None = Field(
        default=None,
        description="the job starts no earlier (with a time zone; at most a year ahead)",
    )
    options: JobOptions = Field(default_factory=JobOptions)


class ItemIn(Model):
    """One SKU change: a JSON item, or a CSV row under these column names."""

    line_item_id: Annotated[
        int | str,
        WithJsonSchema(
            {
                "oneOf": [
                    {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
                    {"type": "string", "pattern": "^[0-9]{1,19}$"},
                ]
            }
        ),
    ]
    sku_id: Annotated[str, Field(min_length=1, max_length=SKU_MAX_LEN)]
    action: Action
    bid_override: Annotated[
        str | float | None,
        WithJsonSchema(
            {
                "oneOf": [
                    {"type": "string", "pattern": BID_PATTERN},
                    {"type": "number", "minimum": 0},
                    {"type": "null"},
                ]
            }
        ),
    ] = Field(default=None, description="required for set_bid; empty for the other actions")
    account_id: Annotated[str, Field(max_length=ACCOUNT_MAX_LEN)] | None = None


class JobSubmission(JobFields):
    """`POST /v1/jobs` with a JSON body."""

    items: list[ItemIn] = Field(min_length=1)


class RetryRequest(Model):
    error_kinds: Annotated[list[ErrorKind], Field(min_length=1)] | None = Field(
        default=None, description="only SKUs that failed in these ways"
    )
    options: JobOptions | None = Field(
        default=None, description="overrides of the parent's options for the child"
    )
    idempotency_key: Key | None = None


class RevertRequest(Model):
    idempotency_key: Key | None = None


class ApplyRequest(Model):
    """Run a finished dry run's rows for real."""

    idempotency_key: Annotated[str, Field(min_length=1, max_length=KEY_MAX_LEN)] | None = None


class JobListQuery(Model):
    """Filters of a job list besides status and submitter."""

    created_after: AwareDatetime | None = Field(
        default=None, description="created at or after (with a time zone)"
    )
    created_before: AwareDatetime | None = Field(
        default=None, description="created before (with a time zone)"
    )
    dry_run: Flag | None = Field(default=None, description="dry runs only (true) or none (false)")
    parent_job_id: Annotated[int, Field(ge=1, le=INT64_MAX)] | None = Field(
        default=None, description="children of this job: its retries, reverts and runs"
    )


class ItemQuery(Model):
    """Which items of a job to list or export."""

    status: ItemStatus | None = None
    error_kind: ErrorKind | None = None
    line_item_id: Annotated[int, Field(ge=1, le=INT64_MAX)] | None = None
    sku_id: (
        Annotated[str, Field(min_length=1, max_length=SKU_MAX_LEN), AfterValidator(_text)] | None
    ) = None


# --- responses ----------------------------------------------------------------------------------


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


# --- parsing ------------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)

# Our words for pydantic's error types, so every interface refuses a field the same way.
_MESSAGES = {
    "extra_forbidden": "is not a field here",
    "missing": "is required",
    "timezone_aware": "must be an ISO 8601 date-time with a time zone",
    "datetime_parsing": "must be an ISO 8601 date-time with a time zone",
    "datetime_type": "must be an ISO 8601 date-time with a time zone",
    "datetime_from_date_parsing": "must be an ISO 8601 date-time with a time zone",
    "enum": "must be one of {expected}",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be an array",
}


def parse(model: type[M], data: Mapping[str, Any] | Any, prefix: str = "") -> M:
    """The model from data, or InvalidField naming the first bad field (`options.max_bid`)."""
    try:
        return model.model_validate(data)
    except ValidationError as invalid:
        error = invalid.errors(include_url=False)[0]
        field = ".".join(str(p) for p in (prefix, *error["loc"]) if p != "")
        raise InvalidField(field or prefix or "body", _reason(error)) from None


def _reason(error: Any) -> str:
    kind = error["type"]
    if kind in _MESSAGES:
        return _MESSAGES[kind].format(**error.get("ctx", {}))
    message = str(error["msg"])
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    return message[0].lower() + message[1:] if message else kind
