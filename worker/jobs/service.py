"""`Jobs`: every operation on jobs, one unit of work each, and the only way in for the CLI, the
HTTP API, the console, the Celery submit task, the demo and `promobulk up`.

Interfaces parse and render; they never open a database session. Settings and dispatch come in
as arguments. What an operation refuses on purpose is a `worker.jobs.errors.JobsError`.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from worker.config import Settings
from worker.db.engine import get_engine
from worker.db.jobs import JobRepository
from worker.db.records import Dispatch
from worker.domain.access import Caller
from worker.jobs.changing import Changing


class Jobs(Changing):
    """The operations, by concern: `worker.jobs.submitting`, `worker.jobs.reading`,
    `worker.jobs.changing` (on `worker.jobs.base`); here, opening and the operators' checks."""

    @classmethod
    def open(
        cls, settings: Settings, dispatch: Dispatch | None = None, caller: Caller | None = None
    ) -> Jobs:
        """On the process's engine for the settings' database."""
        return cls(get_engine(settings.sqlalchemy_url), settings, dispatch, caller)

    def acting_as(self, caller: Caller) -> Jobs:
        """The same operations, asked by `caller` (an HTTP request's key)."""
        return Jobs(self.engine, self.settings, self.dispatch, caller)

    # --- operations ---------------------------------------------------------------------------

    def database_answers(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except SQLAlchemyError:
            return False
        return True

    def status_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Jobs by status and chunks by status (the metrics' gauges)."""
        with Session(self.engine) as session:
            return JobRepository(session).status_counts()
