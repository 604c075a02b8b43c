"""Why a job waits (issue 14, point 4), from the database: behind which earlier job on which
line item, scheduled until when, parked until when and after what, or only for a worker."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.jobs import make_jobs
from worker.db.chunks import ChunkRepository
from worker.jobs.documents import JobFields
from worker.jobs.service import Jobs

_bases = itertools.count(3_300_000_000_000_000_000, 1_000)


@pytest.fixture
def jobs(engine: sa.Engine) -> Jobs:
    return make_jobs(engine)


def submit(jobs: Jobs, *line_items: int, **fields: object) -> int:
    rows = [{"line_item_id": li, "sku_id": "s", "action": "pause"} for li in line_items]
    return jobs.submit_rows(rows, JobFields.model_validate(fields)).id


def chunk_of(engine: sa.Engine, job_id: int, line_item: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT id FROM chunks WHERE job_id = :j AND line_item_id = :li"),
                {"j": job_id, "li": line_item},
            ).scalar_one()
        )


def test_each_waiting_chunk_says_why(jobs: Jobs, engine: sa.Engine) -> None:
    base = next(_bases)
    first = submit(jobs, base + 1, base + 2, base + 3)
    second = submit(jobs, base + 1, base + 2, base + 4)
    later = datetime.now(UTC) + timedelta(hours=3)
    scheduled = submit(jobs, base + 5, base + 6, not_before=later.isoformat())
    running = None
    try:
        with Session(engine) as session:
            chunks = ChunkRepository(session)
            running = chunks.claim(chunk_of(engine, first, base + 1), 300)
            parked = chunks.claim(chunk_of(engine, first, base + 3), 300)
            assert running is not None
            assert parked is not None
            chunks.park(parked, 120, "append: HTTP 503 (service-unavailable)")
            session.commit()

        mine = jobs.waiting(first)
        assert (mine.running, mine.ready, mine.behind, mine.scheduled) == (1, 1, 0, 0)
        assert mine.parked == 1
        assert mine.parked_until is not None
        assert timedelta(seconds=100) < mine.parked_until - datetime.now(UTC) <= timedelta(120)
        assert mine.last_error == "append: HTTP 503 (service-unavailable)"

        theirs = jobs.waiting(second)
        assert (theirs.running, theirs.ready, theirs.behind, theirs.parked) == (0, 1, 2, 0)
        assert [(b.job_id, b.line_item_id, b.chunks) for b in theirs.blockers] == [
            (first, str(base + 1), 2)
        ]

        waiting = jobs.waiting(scheduled)
        assert (waiting.scheduled, waiting.ready, waiting.behind) == (2, 0, 0)
        assert waiting.scheduled_until == later
    finally:
        with Session(engine) as session:  # the chunk "running" goes back, then all is cancelled
            if running is not None:
                ChunkRepository(session).release(running)
                session.commit()
        for job_id in (scheduled, second, first):
            jobs.cancel(job_id)
    assert jobs.waiting(first).running == 0
