"""The allowed status changes, in one table per entity, and the named sets built from them.

The repository turns these into guarded `UPDATE ... WHERE status IN (...)` statements, so a
transition that is not listed here cannot happen in the database either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from worker.domain.enums import ChunkStatus, ItemStatus, JobStatus

S = TypeVar("S", JobStatus, ChunkStatus, ItemStatus)

JOB_TERMINAL = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.COMPLETED_WITH_FAILURES,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
    }
)
CHUNK_TERMINAL = frozenset({ChunkStatus.DONE, ChunkStatus.FAILED, ChunkStatus.CANCELLED})
CHUNK_ACTIVE = frozenset({ChunkStatus.QUEUED, ChunkStatus.RUNNING, ChunkStatus.PARKED})
ITEM_FINAL = frozenset(
    {ItemStatus.SUCCEEDED, ItemStatus.UNCHANGED, ItemStatus.FAILED, ItemStatus.CANCELLED}
)

JOB_TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.RUNNING: JOB_TERMINAL,
}

CHUNK_TRANSITIONS: Mapping[ChunkStatus, frozenset[ChunkStatus]] = {
    # A claim; a cancel before the chunk ever ran.
    ChunkStatus.QUEUED: frozenset({ChunkStatus.RUNNING, ChunkStatus.CANCELLED}),
    # Finished; parked on a transient failure; released (SIGTERM, expired lease); cancelled.
    ChunkStatus.RUNNING: frozenset(
        {
            ChunkStatus.DONE,
            ChunkStatus.FAILED,
            ChunkStatus.PARKED,
            ChunkStatus.QUEUED,
            ChunkStatus.CANCELLED,
        }
    ),
    ChunkStatus.PARKED: frozenset({ChunkStatus.RUNNING, ChunkStatus.QUEUED, ChunkStatus.CANCELLED}),
}

ITEM_TRANSITIONS: Mapping[ItemStatus, frozenset[ItemStatus]] = {
    ItemStatus.PENDING: ITEM_FINAL,
}


def sources(table: Mapping[S, frozenset[S]], target: S) -> tuple[S, ...]:
    """Every status that may move to `target`, sorted so generated SQL is stable."""
    return tuple(sorted(s for s, targets in table.items() if target in targets))
