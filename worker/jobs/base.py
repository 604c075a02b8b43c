"""`JobsBase`: what every group of the operations of `worker.jobs.service.Jobs` shares: the
database, the settings, the dispatch, who asks, and what that caller may see and change."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker.config import Settings
from worker.db.jobs import JobRepository
from worker.db.records import ChunkRef, Dispatch, JobRecord
from worker.domain.access import Caller, operator
from worker.jobs.errors import Forbidden, JobNotFound
from worker.jobs.keys import ApiKeys


class JobsBase:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        dispatch: Dispatch | None = None,
        caller: Caller | None = None,
    ) -> None:
        """`dispatch` sends runnable chunks to the workers after their commit (None: they wait
        for the sweep). `caller` is who asks (see `domain.access`); an operator by default."""
        self.engine = engine
        self.settings = settings
        self.dispatch = dispatch
        self.caller = caller or operator()
        self.keys = ApiKeys(engine)

    def _send(self, chunks: Sequence[ChunkRef]) -> None:
        if self.dispatch is not None and chunks:
            self.dispatch(chunks)

    def _record(self, session: Session, job_id: int) -> JobRecord:
        """The job, if the caller may see it: to a caller that may not, it does not exist."""
        record = JobRepository(session).record(job_id)
        if record is None or not self.caller.sees(record.row.submitted_by):
            raise JobNotFound(job_id)
        return record

    def _changeable(self, session: Session, job_id: int) -> JobRecord:
        record = self._record(session, job_id)
        if not self.caller.changes(record.row.submitted_by):
            raise Forbidden(f"a {self.caller.role.value} key may not change job {job_id}")
        return record
