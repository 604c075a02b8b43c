"""A job as other systems see it: the HTTP API's job resource and the completion notification's
body are this one document, so a webhook receiver and an API poller parse the same thing."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from worker.db.repository import JobView, Repository
from worker.domain.enums import ChunkStatus
from worker.domain.transitions import JOB_TERMINAL

# A chunk costs at least one read and one write; more when it mixes kinds of change or retries.
CALLS_PER_CHUNK_FLOOR = 2
_WAITING = (ChunkStatus.QUEUED, ChunkStatus.RUNNING, ChunkStatus.PARKED)


def eta_seconds(view: JobView, rate_limit_per_minute: int, now: datetime) -> int | None:
    """A floor on the time left: the calls its unfinished chunks need at the app's whole rate
    limit (which other jobs share), after its scheduled start. None once the job has ended."""
    if view.status in JOB_TERMINAL:
        return None
    remaining = sum(view.chunks.get(s, 0) for s in _WAITING)
    seconds = remaining * CALLS_PER_CHUNK_FLOOR * 60 / rate_limit_per_minute
    if view.not_before is not None and view.not_before > now:
        seconds += (view.not_before - now).total_seconds()
    return math.ceil(seconds)


def job_summary(view: JobView, rate_limit_per_minute: int) -> dict[str, Any]:
    """The job's status, counts, completion ratio, times and ETA: one row of a job list."""
    return {
        **view.as_dict(),
        "completion_ratio": round(view.done / view.total, 4) if view.total else 1.0,
        "eta_seconds": eta_seconds(view, rate_limit_per_minute, datetime.now(UTC)),
    }


def job_document(repo: Repository, job_id: int, rate_limit_per_minute: int) -> dict[str, Any]:
    """The summary with why SKUs failed and how the completion notification went; raises
    LookupError for no such job."""
    view = repo.job_view(job_id)
    if view is None:
        raise LookupError(job_id)
    notification = repo.notification_state(job_id)
    return {
        **job_summary(view, rate_limit_per_minute),
        "failures": [
            {"error_kind": g.error_kind, "error_code": g.error_code, "count": g.count}
            for g in repo.failure_summary(job_id)
        ],
        "notification": None
        if notification is None
        else {
            "attempts": notification.attempts,
            "last_status": notification.last_status,
            "last_error": notification.last_error,
            "delivered_at": notification.delivered_at.isoformat()
            if notification.delivered_at
            else None,
        },
    }
