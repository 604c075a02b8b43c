"""A job's record as people and programs see it: its summary (completion ratio, ETA) and its
full document (why SKUs failed, how the completion notification went)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from worker.db import records
from worker.domain.guardrails import guardrails_from_options
from worker.domain.money import format_bid
from worker.domain.transitions import CHUNK_ACTIVE, JOB_TERMINAL
from worker.jobs.documents import (
    AppliedOptions,
    FailureGroup,
    JobDocument,
    JobSummary,
    Notification,
)

# A chunk costs at least one read and one write; more when it mixes kinds of change or retries.
CALLS_PER_CHUNK_FLOOR = 2


def eta_seconds(record: records.JobRecord, rate_limit_per_minute: int, now: datetime) -> int | None:
    """A floor on the time left: the calls its unfinished chunks need at the app's whole rate
    limit (which other jobs share), after its scheduled start. None once the job has ended."""
    if record.status in JOB_TERMINAL:
        return None
    remaining = sum(record.chunks.get(s, 0) for s in CHUNK_ACTIVE)
    seconds = remaining * CALLS_PER_CHUNK_FLOOR * 60 / rate_limit_per_minute
    not_before = record.row.not_before
    if not_before is not None and not_before > now:
        seconds += (not_before - now).total_seconds()
    return math.ceil(seconds)


def _columns(model: type[BaseModel], record: records.JobRecord) -> dict[str, Any]:
    """The model's fields that are columns of the job's row: a new column shows by itself."""
    return {
        name: getattr(record.row, name) for name in model.model_fields if hasattr(record.row, name)
    }


def job_summary(record: records.JobRecord, rate_limit_per_minute: int) -> JobSummary:
    return JobSummary.model_validate(
        {
            **_columns(JobSummary, record),
            "counts": record.counts,
            "chunks": record.chunks,
            "done": record.done,
            "completion_ratio": round(record.done / record.total, 4) if record.total else 1.0,
            "eta_seconds": eta_seconds(record, rate_limit_per_minute, datetime.now(UTC)),
        }
    )


def applied_options(stored: Mapping[str, Any], default_ratio: Decimal) -> AppliedOptions:
    """A job's stored options as it runs with them: an unset ratio is the server's default."""
    rails = guardrails_from_options(stored, default_ratio)
    skipped = stored.get("revert_skipped") or {}
    return AppliedOptions(
        skip_read=bool(stored.get("skip_read", False)),
        guardrails=rails is not None,
        max_bid=None if rails is None or rails.max_bid is None else format_bid(rails.max_bid),
        max_change_ratio=None
        if rails is None or rails.max_change_ratio is None
        else f"{rails.max_change_ratio.normalize():f}",
        predict=stored.get("predict", True) is not False,
        clamp_to_min_bid=stored.get("clamp_to_min_bid") is True,
        cancel_requested=bool(stored.get("cancel_requested", False)),
        revert_skipped={str(k): int(v) for k, v in skipped.get("by_reason", {}).items()},
    )


def job_document(
    record: records.JobRecord,
    failures: Sequence[records.FailureGroup],
    notification: records.NotificationState | None,
    rate_limit_per_minute: int,
    default_ratio: Decimal,
) -> JobDocument:
    return JobDocument.model_validate(
        {
            **job_summary(record, rate_limit_per_minute).model_dump(),
            "options": applied_options(record.row.options or {}, default_ratio),
            **{
                k: v
                for k, v in _columns(JobDocument, record).items()
                if k not in JobSummary.model_fields and k != "options"
            },
            "failures": [
                FailureGroup(
                    error_kind=g.error_kind,
                    error_code=g.error_code,
                    count=g.count,
                    example=g.example,
                )
                for g in failures
            ],
            "notification": None
            if notification is None
            else Notification(
                attempts=notification.attempts,
                last_status=notification.last_status,
                last_error=notification.last_error,
                delivered_at=notification.delivered_at,
            ),
        }
    )
