"""How a job's final status follows from its items' outcomes."""

from __future__ import annotations

from collections.abc import Mapping

from worker.domain.enums import ItemStatus, JobStatus


def job_final_status(counts: Mapping[str, int], *, cancel_requested: bool) -> JobStatus:
    """Cancelled wins; otherwise any failure taints success, and all-failed is a failed job."""
    if cancel_requested:
        return JobStatus.CANCELLED
    failed = counts.get(ItemStatus.FAILED, 0)
    ok = counts.get(ItemStatus.SUCCEEDED, 0) + counts.get(ItemStatus.UNCHANGED, 0)
    if failed == 0:
        return JobStatus.SUCCEEDED
    if ok == 0:
        return JobStatus.FAILED
    return JobStatus.COMPLETED_WITH_FAILURES
