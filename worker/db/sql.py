"""What every repository shares: one way to run a statement, and the status lists and SQL
fragments that several of them need.

Statuses are interpolated into SQL only from the named sets of `worker.domain.transitions`, so a
guarded `UPDATE ... WHERE status IN (...)` says exactly what the transition table allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.db.records import ClaimedChunk
from worker.domain.enums import ChunkStatus, JobStatus
from worker.domain.transitions import (
    CHUNK_ACTIVE,
    CHUNK_TRANSITIONS,
    JOB_TERMINAL,
    JOB_TRANSITIONS,
    sources,
)


def in_list(statuses: Iterable[str]) -> str:
    """A set of statuses as a SQL list, sorted so generated SQL is stable."""
    return "(" + ", ".join(f"'{s}'" for s in sorted(statuses)) + ")"


ACTIVE = in_list(CHUNK_ACTIVE)
CLAIMABLE = in_list(sources(CHUNK_TRANSITIONS, ChunkStatus.RUNNING))
JOB_STARTABLE = in_list(sources(JOB_TRANSITIONS, JobStatus.RUNNING))
JOB_ENDED = in_list(JOB_TERMINAL)
# Chunks a cancel ends at once; a running one stops itself at its next safe point.
CANCEL_NOW = in_list(set(sources(CHUNK_TRANSITIONS, ChunkStatus.CANCELLED)) - {ChunkStatus.RUNNING})
# A chunk's item counts by status, for an UPDATE of `chunks c`.
CHUNK_COUNTS = """coalesce((
    SELECT jsonb_object_agg(status, n) FROM (
        SELECT status, count(*) AS n FROM items
        WHERE job_id = c.job_id AND line_item_id = c.line_item_id GROUP BY status) s), '{}')"""


class Repo:
    """A repository works inside its caller's session: the caller owns the transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _exec(self, sql: str, **params: Any) -> sa.CursorResult[Any]:
        return cast(sa.CursorResult[Any], self.session.execute(sa.text(sql), params))


class LeaseLost(RuntimeError):
    """The chunk is no longer this runner's: the sweep reclaimed it or another runner ended it."""


def fence(chunk: ClaimedChunk) -> str:
    """A SQL condition true only while the chunk is still running under this claim."""
    return (
        f"EXISTS (SELECT 1 FROM chunks c WHERE c.id = {int(chunk.id)}"
        f" AND c.status = 'running' AND c.attempts = {int(chunk.attempt)})"
    )
