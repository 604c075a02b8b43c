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

from worker.domain.enums import Action, ErrorKind, ItemStatus, Priority
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
from worker.jobs.responses import (
    ApiKey,
    AppliedOptions,
    BidText,
    Blocker,
    DerivedJob,
    FailureGroup,
    Health,
    HistoryEntry,
    HistoryPage,
    ItemDocument,
    ItemPage,
    JobDocument,
    JobPage,
    JobSummary,
    NewApiKey,
    Notification,
    Problem,
    RevertPreview,
    RowProblem,
    Submitted,
    Waiting,
)

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


# Every document, the answers included: an interface imports them all from here.
__all__ = [
    "BID_LIMIT",
    "KEY_MAX_LEN",
    "MAX_ITEMS_PAGE",
    "MAX_JOBS_PAGE",
    "NOT_BEFORE_MAX_AHEAD",
    "NOT_BEFORE_MAX_BEHIND",
    "RATIO_MAX",
    "URL_MAX_LEN",
    "ApiKey",
    "AppliedOptions",
    "ApplyRequest",
    "BidText",
    "Blocker",
    "DecimalIn",
    "DerivedJob",
    "FailureGroup",
    "Flag",
    "Health",
    "HistoryEntry",
    "HistoryPage",
    "ItemDocument",
    "ItemIn",
    "ItemPage",
    "ItemQuery",
    "JobDocument",
    "JobFields",
    "JobListQuery",
    "JobOptions",
    "JobPage",
    "JobSubmission",
    "JobSummary",
    "Key",
    "Model",
    "NewApiKey",
    "Notification",
    "Problem",
    "RetryRequest",
    "RevertPreview",
    "RevertRequest",
    "RowProblem",
    "Submitted",
    "Waiting",
    "parse",
]
