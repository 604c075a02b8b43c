"""The vocabularies stored as text in the database and spoken on every interface."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    SET_BID = "set_bid"
    CLEAR_BID = "clear_bid"  # no bid override: the product bids the line item's target bid
    ADD = "add"
    REMOVE = "remove"
    PAUSE = "pause"
    UNPAUSE = "unpause"


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ChunkStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PARKED = "parked"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ItemStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ErrorKind(StrEnum):
    """Why a SKU failed; what an operator filters on before a retry."""

    VALIDATION = "validation"
    NOT_ON_LINE_ITEM = "not_on_line_item"
    LINE_ITEM_NOT_FOUND = "line_item_not_found"
    FORBIDDEN = "forbidden"
    BID_NOT_APPLIED = "bid_not_applied"
    TRANSIENT_EXHAUSTED = "transient_exhausted"
    GUARDRAIL = "guardrail"
    API_ERROR = "api_error"


class ProductStatus(StrEnum):
    """A promoted product's status as the API reports it."""

    ACTIVE = "active"
    PAUSED = "paused"
    UNKNOWN = "unknown"


class Role(StrEnum):
    """What an API key may do."""

    SUBMIT = "submit"  # create jobs; read and act on its own
    READ = "read"  # read every job, change nothing
    OPERATE = "operate"  # everything, including keys


class DerivedReason(StrEnum):
    RETRY = "retry"
    REVERT = "revert"
    APPLY = "apply"  # the changes a finished dry run planned, made for real
