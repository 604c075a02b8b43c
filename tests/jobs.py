"""The application layer as the tests use it: `Jobs` on the session's database, with settings
from these values only (not the environment)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.config import Settings
from worker.db.facts import FactRepository
from worker.db.records import Dispatch
from worker.domain.access import Caller, operator
from worker.jobs.documents import JobFields, Submitted
from worker.jobs.service import Jobs

MAX_BID = "50"
WEBHOOK_SECRET = "whsec-api-tests"


def settings_for(**values: Any) -> Settings:
    return Settings.model_validate(
        {"PROMOBULK_MAX_BID": MAX_BID, "PROMOBULK_WEBHOOK_SECRET": WEBHOOK_SECRET, **values}
    )


def make_jobs(
    engine: sa.Engine,
    dispatch: Dispatch | None = None,
    *,
    caller: Caller | None = None,
    **settings: Any,
) -> Jobs:
    return Jobs(engine, settings_for(**settings), dispatch, caller)


def submit_rows(
    engine: sa.Engine,
    rows: Iterable[Mapping[str, object]],
    *,
    submitted_by: str = "cli",
    dispatch: Dispatch | None = None,
    **fields: Any,
) -> Submitted:
    """Rows and the job's fields (as the JSON body would give them) through `Jobs`, by an
    operator named `submitted_by`."""
    jobs = make_jobs(engine, dispatch, caller=operator(submitted_by))
    return jobs.submit_rows(rows, JobFields.model_validate(fields))


def forget_facts(engine: sa.Engine) -> None:
    """No refusal facts: the next job runs as a first night would (the shop's SKUs share one
    account across tests, and a fact about a SKU holds on all its account's line items)."""
    with Session(engine) as session:
        FactRepository(session).clear()
        session.commit()
