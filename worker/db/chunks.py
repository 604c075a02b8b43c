"""Chunk rows: made from a job's items, dispatched, claimed, leased, parked, finished, cancelled.

A claim that matches no row means another process has the chunk (or it is not its turn): the
caller drops the message. A later write that matches no row means this process lost its lease:
that is raised as `LeaseLost`, never ignored. Writes by a chunk's runner are fenced by the
attempt number it claimed, so a runner whose lease was reclaimed cannot overwrite its
successor's work.
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.db.jobs import JobRepository
from worker.db.records import Blocker, ChunkRef, ClaimedChunk, FinishedChunk, WaitingRecord
from worker.db.sql import (
    ACTIVE,
    CANCEL_NOW,
    CHUNK_COUNTS,
    CLAIMABLE,
    JOB_STARTABLE,
    LeaseLost,
    Repo,
    fence,
)
from worker.domain.enums import ChunkStatus, Priority

# Serialises the last step of every submission, so chunk ids follow commit order: the order in
# which chunks of one line item must run.
_SUBMIT_ORDER_LOCK = 0x70726F6D6F  # "promo"
# The chunk `c` holds a SKU that a call carried and no outcome settled yet.
_SENT = """EXISTS (
    SELECT 1 FROM items i WHERE i.job_id = c.job_id AND i.line_item_id = c.line_item_id
      AND i.status = 'pending' AND i.attempts > 0)"""


class ChunkRepository(Repo):
    def make(self, job_id: int) -> list[int]:
        """One chunk per line item of the job, numbered in commit order (see the lock)."""
        self._exec("SELECT pg_advisory_xact_lock(:k)", k=_SUBMIT_ORDER_LOCK)
        ids = self._exec(
            """
            INSERT INTO chunks (job_id, line_item_id, status, n_items, attempts, counts, api_calls,
                                not_before)
            SELECT :job, line_item_id, 'queued', count(*), 0, '{}', 0,
                   (SELECT not_before FROM jobs WHERE id = :job)
            FROM items WHERE job_id = :job GROUP BY line_item_id ORDER BY line_item_id
            RETURNING id
            """,
            job=job_id,
        ).scalars()
        return sorted(int(i) for i in ids)

    def runnable(
        self, job_id: int | None = None, *, stale_seconds: float = 0, limit: int = 10_000
    ) -> list[tuple[int, Priority]]:
        """Chunks first in line for their line item and due, oldest first, marked dispatched.

        `stale_seconds` > 0 (the sweep) picks only those not dispatched for that long: a message
        lost with a Redis restart is sent again, one still waiting in the queue is left alone.
        """
        rows = self._exec(
            f"""
            UPDATE chunks c SET dispatched_at = now()
            FROM jobs j
            WHERE j.id = c.job_id AND c.id IN (
                SELECT c2.id FROM chunks c2
                WHERE c2.status IN {CLAIMABLE}
                  AND (CAST(:job AS bigint) IS NULL OR c2.job_id = :job)
                  AND (c2.not_before IS NULL OR c2.not_before <= now())
                  AND (:stale = 0 OR c2.dispatched_at IS NULL
                       OR c2.dispatched_at < now() - make_interval(secs => :stale))
                  AND NOT EXISTS (
                    SELECT 1 FROM chunks o WHERE o.line_item_id = c2.line_item_id
                      AND o.status IN {ACTIVE} AND o.id < c2.id)
                ORDER BY c2.id LIMIT :limit)
            RETURNING c.id, j.priority
            """,
            job=job_id,
            stale=stale_seconds,
            limit=limit,
        ).all()
        return sorted((int(r.id), Priority(r.priority)) for r in rows)

    def hurry_unsettled(self, job_id: int) -> list[ChunkRef]:
        """The job's waiting chunks that sent SKUs an earlier attempt did not settle (a transient
        failure or a crash came first): due now and marked dispatched, so a runner reads those
        SKUs back and records what the API did before the cancel takes the rest."""
        rows = self._exec(
            f"""
            UPDATE chunks c SET not_before = now(), dispatched_at = now() FROM jobs j
            WHERE j.id = c.job_id AND c.job_id = :job AND c.status IN {CANCEL_NOW} AND {_SENT}
            RETURNING c.id, j.priority
            """,
            job=job_id,
        ).all()
        return sorted((int(r.id), Priority(r.priority)) for r in rows)

    def next_for_line_items(self, line_items: Sequence[int]) -> list[tuple[int, Priority]]:
        """The chunk first in line for each of these line items, marked dispatched."""
        rows = self._exec(
            f"""
            UPDATE chunks c SET dispatched_at = now() FROM jobs j
            WHERE j.id = c.job_id AND c.status = 'queued' AND c.line_item_id = ANY(:lis)
              AND NOT EXISTS (
                SELECT 1 FROM chunks o WHERE o.line_item_id = c.line_item_id
                  AND o.status IN {ACTIVE} AND o.id < c.id)
            RETURNING c.id, j.priority
            """,
            lis=list(line_items),
        ).all()
        return sorted((int(r.id), Priority(r.priority)) for r in rows)

    def waiting(self, job_id: int, blockers: int = 5) -> WaitingRecord:
        """Why the job's unfinished chunks are not running: behind an earlier job's chunk on
        their line item, scheduled (`not_before`), parked after transient failures, or ready
        for a worker. One statement over the job's own chunks (the chunks index)."""
        mine = f"""
            WITH mine AS (
                SELECT c.id, c.line_item_id, c.status, c.not_before, c.last_error,
                       (SELECT o.job_id FROM chunks o
                        WHERE o.line_item_id = c.line_item_id AND o.status IN {ACTIVE}
                          AND o.id < c.id ORDER BY o.id LIMIT 1) AS ahead,
                       c.not_before > now() AS later
                FROM chunks c WHERE c.job_id = :job AND c.status IN {ACTIVE})
        """
        row = self._exec(
            mine
            + """
            SELECT count(*) FILTER (WHERE status = 'running') AS running,
                   count(*) FILTER (WHERE status <> 'running' AND ahead IS NOT NULL) AS behind,
                   count(*) FILTER (WHERE status <> 'running' AND ahead IS NULL
                                    AND NOT coalesce(later, false)) AS ready,
                   count(*) FILTER (WHERE status = 'queued' AND ahead IS NULL AND later)
                       AS scheduled,
                   min(not_before) FILTER (WHERE status = 'queued' AND ahead IS NULL AND later)
                       AS scheduled_until,
                   count(*) FILTER (WHERE status = 'parked' AND later) AS parked,
                   min(not_before) FILTER (WHERE status = 'parked' AND later) AS parked_until,
                   (array_agg(last_error ORDER BY not_before)
                       FILTER (WHERE status = 'parked' AND later))[1] AS last_error
            FROM mine
            """,
            job=job_id,
        ).one()
        ahead = self._exec(
            mine
            + """
            SELECT ahead, min(line_item_id) AS line_item_id, count(*) AS n FROM mine
            WHERE status <> 'running' AND ahead IS NOT NULL
            GROUP BY ahead ORDER BY ahead LIMIT :limit
            """,
            job=job_id,
            limit=blockers,
        ).all()
        return WaitingRecord(
            running=int(row.running),
            ready=int(row.ready),
            behind=int(row.behind),
            blockers=[Blocker(int(r.ahead), int(r.line_item_id), int(r.n)) for r in ahead],
            scheduled=int(row.scheduled),
            scheduled_until=row.scheduled_until,
            parked=int(row.parked),
            parked_until=row.parked_until,
            last_error=row.last_error,
        )

    def reclaim_expired(self, *, every_lease: bool = False) -> int:
        """Running chunks whose lease ran out (a killed worker) go back to the queue; with
        `every_lease`, every running chunk (for a database no worker can be using)."""
        result = self._exec(
            """
            UPDATE chunks SET status = 'queued', lease_expires_at = NULL, dispatched_at = NULL,
                last_error = 'lease expired: the worker running it stopped'
            WHERE status = 'running' AND (:every OR lease_expires_at < now())
            """,
            every=every_lease,
        )
        return int(result.rowcount)

    def claim(self, chunk_id: int, lease_seconds: int) -> ClaimedChunk | None:
        """Take the chunk if it is claimable, due, and first in line for its line item."""
        row = self._exec(
            f"""
            UPDATE chunks c SET status = 'running', attempts = c.attempts + 1,
                lease_expires_at = now() + make_interval(secs => :lease),
                started_at = coalesce(c.started_at, now())
            WHERE c.id = :id AND c.status IN {CLAIMABLE}
              AND (c.not_before IS NULL OR c.not_before <= now())
              AND NOT EXISTS (
                SELECT 1 FROM chunks o WHERE o.line_item_id = c.line_item_id AND o.id <> c.id
                  AND (o.status = 'running' OR (o.status IN {ACTIVE} AND o.id < c.id)))
            RETURNING c.id, c.job_id, c.line_item_id, c.attempts, c.last_error
            """,
            id=chunk_id,
            lease=lease_seconds,
        ).first()
        if row is None:
            return None
        job = self._exec(
            f"""
            UPDATE jobs SET status = CASE WHEN status IN {JOB_STARTABLE} THEN 'running'
                                          ELSE status END,
                            started_at = coalesce(started_at, now())
            WHERE id = :job
            RETURNING priority, options, (options ->> 'cancel_requested') = 'true' AS cancel,
                      dry_run
            """,
            job=row.job_id,
        ).one()
        return ClaimedChunk(
            id=int(row.id),
            job_id=int(row.job_id),
            line_item_id=int(row.line_item_id),
            attempt=int(row.attempts),
            priority=Priority(job.priority),
            options=dict(job.options or {}),
            cancel_requested=bool(job.cancel),
            lease_seconds=lease_seconds,
            last_error=row.last_error,
            dry_run=bool(job.dry_run),
        )

    def heartbeat(self, chunk: ClaimedChunk, calls: int = 1) -> bool:
        """Before each API call: count it, renew the lease, and say whether the job is being
        cancelled (the runner's safe point). Raises LeaseLost when the chunk is no longer ours."""
        row = self._exec(
            """
            UPDATE chunks c SET api_calls = c.api_calls + CASE
                    WHEN (j.options ->> 'cancel_requested') = 'true' THEN 0 ELSE :calls END,
                lease_expires_at = now() + make_interval(secs => :lease)
            FROM jobs j
            WHERE c.id = :id AND c.status = 'running' AND c.attempts = :attempt AND j.id = c.job_id
            RETURNING (j.options ->> 'cancel_requested') = 'true' AS cancel
            """,
            calls=calls,
            lease=chunk.lease_seconds,
            id=chunk.id,
            attempt=chunk.attempt,
        ).first()
        if row is None:
            raise LeaseLost(f"chunk {chunk.id} attempt {chunk.attempt}")
        return bool(row.cancel)

    def still_mine(self, chunk: ClaimedChunk) -> bool:
        return bool(self._exec(f"SELECT {fence(chunk)}").scalar())

    def park(self, chunk: ClaimedChunk, delay_seconds: float, error: str) -> None:
        result = self._exec(
            """
            UPDATE chunks SET status = 'parked', last_error = :err, lease_expires_at = NULL,
                dispatched_at = NULL,
                not_before = now() + make_interval(secs => :delay)
            WHERE id = :id AND status = 'running' AND attempts = :attempt
            """,
            id=chunk.id,
            attempt=chunk.attempt,
            delay=delay_seconds,
            err=error[:2000],
        )
        if result.rowcount == 0:
            raise LeaseLost(f"chunk {chunk.id} attempt {chunk.attempt}")

    def release(self, chunk: ClaimedChunk) -> None:
        """Hand a running chunk back (its worker is stopping): queued again, marked dispatched
        now (the caller sends it), its attempt not counted. Only at a safe point, with no call
        in flight: the next claim takes the same attempt number, and this runner writes no more."""
        result = self._exec(
            """
            UPDATE chunks SET status = 'queued', attempts = attempts - 1,
                lease_expires_at = NULL, dispatched_at = now()
            WHERE id = :id AND status = 'running' AND attempts = :attempt
            """,
            id=chunk.id,
            attempt=chunk.attempt,
        )
        if result.rowcount == 0:
            raise LeaseLost(f"chunk {chunk.id} attempt {chunk.attempt}")

    def finish(
        self, chunk: ClaimedChunk, status: ChunkStatus = ChunkStatus.DONE, error: str | None = None
    ) -> FinishedChunk:
        """Close the chunk and, when it was the job's last, roll the job up: one transaction."""
        jobs = JobRepository(self.session)
        jobs.lock_status(chunk.job_id)
        row = self._exec(
            f"""
            UPDATE chunks c SET status = :status, finished_at = now(), lease_expires_at = NULL,
                last_error = coalesce(:err, last_error), counts = {CHUNK_COUNTS}
            WHERE id = :id AND status = 'running' AND attempts = :attempt
            RETURNING counts
            """,
            id=chunk.id,
            attempt=chunk.attempt,
            status=status.value,
            err=error,
        ).first()
        if row is None:
            raise LeaseLost(f"chunk {chunk.id} attempt {chunk.attempt}")
        return FinishedChunk(
            counts={k: int(v) for k, v in dict(row.counts).items()},
            job_status=jobs.roll_up_if_last(chunk.job_id),
            next_chunks=self.next_for_line_items([chunk.line_item_id]),
        )

    def cancel_not_started(self, job_id: int) -> list[int]:
        """End the job's chunks that are not running and never sent a SKU, their SKUs
        `cancelled`; returns the line items they free. Running chunks stop themselves at their
        next safe point; waiting ones that sent SKUs are left to a runner (`hurry_unsettled`)."""
        stopped = self._exec(
            f"""
            UPDATE chunks c SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
            WHERE c.job_id = :job AND c.status IN {CANCEL_NOW} AND NOT {_SENT}
            RETURNING c.line_item_id
            """,
            job=job_id,
        ).scalars()
        freed = sorted(int(li) for li in stopped)
        self._exec(
            """
            UPDATE items SET status = 'cancelled', finished_at = now()
            WHERE job_id = :job AND status = 'pending' AND line_item_id = ANY(:lis)
            """,
            job=job_id,
            lis=freed,
        )
        self._exec(
            f"""
            UPDATE chunks c SET counts = {CHUNK_COUNTS}
            WHERE c.job_id = :job AND c.line_item_id = ANY(:lis)
            """,
            job=job_id,
            lis=freed,
        )
        return freed
