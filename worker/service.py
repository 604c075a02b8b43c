"""Job operations that span the repository and dispatch, shared by every interface."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker.db.repository import Repository
from worker.domain.enums import JobStatus
from worker.submission import Dispatch


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
