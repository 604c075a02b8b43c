from __future__ import annotations

import pytest

from worker.domain.enums import ChunkStatus, ItemStatus, JobStatus
from worker.domain.rollup import job_final_status
from worker.domain.transitions import (
    CHUNK_ACTIVE,
    CHUNK_TERMINAL,
    CHUNK_TRANSITIONS,
    ITEM_FINAL,
    ITEM_TRANSITIONS,
    JOB_TERMINAL,
    JOB_TRANSITIONS,
    sources,
)


def test_terminal_states_have_no_way_out() -> None:
    for status in JOB_TERMINAL:
        assert status not in JOB_TRANSITIONS
    for chunk_status in CHUNK_TERMINAL:
        assert chunk_status not in CHUNK_TRANSITIONS
    for item_status in ITEM_FINAL:
        assert item_status not in ITEM_TRANSITIONS


def test_every_status_is_either_active_or_terminal() -> None:
    assert set(ChunkStatus) == CHUNK_ACTIVE | CHUNK_TERMINAL
    assert not CHUNK_ACTIVE & CHUNK_TERMINAL
    assert set(JOB_TRANSITIONS) | JOB_TERMINAL == set(JobStatus)
    assert ITEM_FINAL | {ItemStatus.PENDING} == set(ItemStatus)


def test_a_chunk_is_claimed_only_from_queued_or_parked() -> None:
    assert sources(CHUNK_TRANSITIONS, ChunkStatus.RUNNING) == (
        ChunkStatus.PARKED,
        ChunkStatus.QUEUED,
    )
    assert ChunkStatus.DONE not in CHUNK_TRANSITIONS
    assert ChunkStatus.PARKED in CHUNK_TRANSITIONS[ChunkStatus.RUNNING]


def test_a_job_finishes_only_from_queued_or_running() -> None:
    assert set(sources(JOB_TRANSITIONS, JobStatus.SUCCEEDED)) == {JobStatus.RUNNING}
    assert set(sources(JOB_TRANSITIONS, JobStatus.CANCELLED)) == {
        JobStatus.QUEUED,
        JobStatus.RUNNING,
    }
    assert JobStatus.SUCCEEDED not in JOB_TRANSITIONS


@pytest.mark.parametrize(
    ("counts", "cancel", "expected"),
    [
        ({"succeeded": 3, "unchanged": 2}, False, JobStatus.SUCCEEDED),
        ({"unchanged": 2}, False, JobStatus.SUCCEEDED),
        ({"succeeded": 3, "failed": 1}, False, JobStatus.COMPLETED_WITH_FAILURES),
        ({"unchanged": 1, "failed": 1}, False, JobStatus.COMPLETED_WITH_FAILURES),
        ({"failed": 4}, False, JobStatus.FAILED),
        ({"succeeded": 3, "cancelled": 2}, True, JobStatus.CANCELLED),
    ],
)
def test_roll_up(counts: dict[str, int], cancel: bool, expected: JobStatus) -> None:
    assert job_final_status(counts, cancel_requested=cancel) is expected
