"""Every SQL statement of the product. State changes are guarded updates that say what they found.

A claim that matches no row means another process has the chunk (or it is not its turn): the
caller drops the message. A finish that matches no row means this process lost its lease: that
is raised as `LeaseLost`, never ignored. Writes by a chunk's runner are fenced by the attempt
number it claimed, so a runner whose lease was reclaimed cannot overwrite its successor's work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.domain.enums import Action, ChunkStatus, ItemStatus, JobStatus, Priority
from worker.domain.planner import Outcome, Snapshot, WantedItem
from worker.domain.rollup import job_final_status
from worker.domain.transitions import (
    CHUNK_ACTIVE,
    CHUNK_TRANSITIONS,
    JOB_TERMINAL,
    JOB_TRANSITIONS,
    sources,
)
from worker.domain.validation import ItemSpec, RowError

# Serialises the last step of every submission, so chunk ids follow commit order: the order in
# which chunks of one line item must run.
_SUBMIT_ORDER_LOCK = 0x70726F6D6F  # "promo"


class LeaseLost(RuntimeError):
    """The chunk is no longer this runner's: beat reclaimed it or another runner finished it."""


def _in(statuses: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{s}'" for s in sorted(statuses)) + ")"


ACTIVE = _in(CHUNK_ACTIVE)
CLAIMABLE = _in(sources(CHUNK_TRANSITIONS, ChunkStatus.RUNNING))
JOB_STARTABLE = _in(sources(JOB_TRANSITIONS, JobStatus.RUNNING))
# A chunk's item counts by status, for an UPDATE of `chunks c`.
CHUNK_COUNTS = """coalesce((
    SELECT jsonb_object_agg(status, n) FROM (
        SELECT status, count(*) AS n FROM items
        WHERE job_id = c.job_id AND line_item_id = c.line_item_id GROUP BY status) s), '{}')"""
# Chunks a cancel ends at once; a running one stops itself at its next safe point.
CANCEL_NOW = _in(set(sources(CHUNK_TRANSITIONS, ChunkStatus.CANCELLED)) - {ChunkStatus.RUNNING})


@dataclass(frozen=True, slots=True)
class ClaimedChunk:
    id: int
    job_id: int
    line_item_id: int
    attempt: int
    priority: Priority
    options: dict[str, Any]
    cancel_requested: bool
    lease_seconds: int
    last_error: str | None = None  # what ended the previous attempt
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class FinishedChunk:
    counts: dict[str, int]
    job_status: JobStatus | None  # set when this chunk was the job's last
    next_chunks: list[tuple[int, Priority]]  # the chunk now first in line for the line item


@dataclass(frozen=True, slots=True)
class FailureGroup:
    error_kind: str | None
    error_code: str | None
    count: int
    example: str | None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NotificationState:
    attempts: int
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobView:
    id: int
    status: JobStatus
    submitted_by: str
    priority: Priority
    dry_run: bool
    total: int
    counts: dict[str, int]
    chunks: dict[str, int]
    parent_job_id: int | None
    derived_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    not_before: datetime | None = None

    @property
    def done(self) -> int:
        return sum(n for s, n in self.counts.items() if s != ItemStatus.PENDING)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status.value,
            "submitted_by": self.submitted_by,
            "priority": self.priority.value,
            "dry_run": self.dry_run,
            "total": self.total,
            "done": self.done,
            "counts": self.counts,
            "chunks": self.chunks,
            "parent_job_id": self.parent_job_id,
            "derived_reason": self.derived_reason,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "not_before": self.not_before.isoformat() if self.not_before else None,
        }


@dataclass(frozen=True, slots=True)
class ItemFilter:
    """Which items of a job to list or export; empty tuples and None match everything."""

    statuses: tuple[str, ...] = ()
    error_kinds: tuple[str, ...] = ()
    line_item_id: int | None = None
    sku_id: str | None = None


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _exec(self, sql: str, **params: Any) -> sa.CursorResult[Any]:
        return cast(sa.CursorResult[Any], self.session.execute(sa.text(sql), params))

    # --- submission -------------------------------------------------------------------------

    def find_job_by_key(self, submitted_by: str, idempotency_key: str) -> int | None:
        row = self._exec(
            "SELECT id FROM jobs WHERE submitted_by = :by AND idempotency_key = :key",
            by=submitted_by,
            key=idempotency_key,
        ).first()
        return None if row is None else int(row[0])

    def insert_job(
        self,
        *,
        submitted_by: str,
        idempotency_key: str | None,
        priority: Priority,
        dry_run: bool,
        options: dict[str, Any],
        parent_job_id: int | None = None,
        derived_reason: str | None = None,
        not_before: datetime | None = None,
        callback_url: str | None = None,
    ) -> int:
        return int(
            self._exec(
                """
                INSERT INTO jobs (status, submitted_by, idempotency_key, priority, dry_run,
                                  options, total, counts, parent_job_id, derived_reason,
                                  not_before, callback_url)
                VALUES ('queued', :by, :key, :priority, :dry_run, CAST(:options AS jsonb), 0,
                        '{}', :parent, :reason, :not_before, :callback_url)
                RETURNING id
                """,
                by=submitted_by,
                key=idempotency_key,
                priority=priority.value,
                dry_run=dry_run,
                options=json.dumps(options),
                parent=parent_job_id,
                reason=derived_reason,
                not_before=not_before,
                callback_url=callback_url,
            ).scalar_one()
        )

    def copy_items(self, job_id: int, specs: Iterable[ItemSpec]) -> int:
        """Stream items in with COPY: memory stays flat whatever the job's size."""
        raw = self.session.connection().connection.driver_connection
        assert raw is not None
        count = 0
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY items (job_id, line_item_id, row_number, sku_id, account_id, action,"
                " desired_bid) FROM STDIN"
            ) as copy,
        ):
            for spec in specs:
                copy.write_row(
                    (
                        job_id,
                        spec.line_item_id,
                        spec.row_number,
                        spec.sku_id,
                        spec.account_id,
                        spec.action.value,
                        spec.bid,
                    )
                )
                count += 1
        return count

    def duplicate_rows(self, job_id: int, cap: int) -> tuple[list[RowError], int]:
        """Rows repeating an earlier (line item, SKU) of the job: the first `cap`, and how many."""
        rows = self._exec(
            """
            WITH d AS (
                SELECT line_item_id, sku_id, array_agg(row_number ORDER BY row_number) AS r
                FROM items WHERE job_id = :job
                GROUP BY line_item_id, sku_id HAVING count(*) > 1
            )
            SELECT line_item_id, sku_id, r, sum(cardinality(r) - 1) OVER () AS total
            FROM d ORDER BY r[2] LIMIT :cap
            """,
            job=job_id,
            cap=cap,
        ).all()
        errors: list[RowError] = []
        total = int(rows[0].total) if rows else 0
        for row in rows:
            first, *repeats = row.r
            for n in repeats:
                errors.append(
                    RowError(
                        n,
                        "sku_id",
                        f"line item {row.line_item_id} and SKU {row.sku_id!r} already appear"
                        f" in row {first}",
                    )
                )
        errors.sort(key=lambda e: e.row)
        return errors[:cap], total

    def make_chunks(self, job_id: int, total: int) -> list[int]:
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
        chunk_ids = sorted(int(i) for i in ids)
        self._exec("UPDATE jobs SET total = :total WHERE id = :job", job=job_id, total=total)
        return chunk_ids

    # --- dispatch ------------------------------------------------------------------------------

    def runnable_chunks(
        self, job_id: int | None = None, *, stale_seconds: float = 0, limit: int = 10_000
    ) -> list[tuple[int, Priority]]:
        """Chunks first in line for their line item and due, oldest first, marked dispatched.

        `stale_seconds` > 0 (beat) picks only those not dispatched for that long: a message lost
        with a Redis restart is sent again, one still waiting in the queue is left alone.
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

    def reclaim_expired(self) -> int:
        """Running chunks whose lease ran out (a killed worker) go back to the queue."""
        result = self._exec(
            """
            UPDATE chunks SET status = 'queued', lease_expires_at = NULL, dispatched_at = NULL,
                last_error = 'lease expired: the worker running it stopped'
            WHERE status = 'running' AND lease_expires_at < now()
            """
        )
        return int(result.rowcount)

    # --- running a chunk -----------------------------------------------------------------------

    def claim_chunk(self, chunk_id: int, lease_seconds: int) -> ClaimedChunk | None:
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

    def pending_items(self, chunk: ClaimedChunk) -> list[WantedItem]:
        """The chunk's SKUs still without an outcome.

        Filtered here rather than in SQL: with no `status` predicate the (job, line item, SKU)
        index is the only good plan, even before the fresh table has statistics (a status
        predicate could steer the planner to the status index and a scan of the whole job).
        """
        rows = self._exec(
            """
            SELECT id, sku_id, action, desired_bid, attempts, status FROM items
            WHERE job_id = :job AND line_item_id = :li ORDER BY id
            """,
            job=chunk.job_id,
            li=chunk.line_item_id,
        ).all()
        return [
            WantedItem(int(r.id), r.sku_id, Action(r.action), r.desired_bid, int(r.attempts))
            for r in rows
            if r.status == ItemStatus.PENDING
        ]

    def refresh_statistics(self) -> None:
        """Give the planner statistics for a large job just stored: until autovacuum gets to it,
        the per-chunk queries would be planned for an empty table."""
        self._exec("ANALYZE items, chunks")

    def _fence(self, chunk: ClaimedChunk) -> str:
        return (
            f"EXISTS (SELECT 1 FROM chunks c WHERE c.id = {int(chunk.id)}"
            f" AND c.status = 'running' AND c.attempts = {int(chunk.attempt)})"
        )

    def count_attempt(
        self, chunk: ClaimedChunk, sent: Sequence[tuple[int, Snapshot | None]]
    ) -> bool:
        """Before a write is sent: count it, and keep the SKUs' before-values from their first
        send, so a retry after a crash still knows what the product was before we touched it.
        True means the job is being cancelled and nothing was counted."""
        if self.heartbeat(chunk):
            return True
        self._exec(
            """
            UPDATE items i SET attempts = i.attempts + 1,
                bid_before = CASE WHEN i.attempts = 0 THEN v.bid ELSE i.bid_before END,
                product_status_before = CASE WHEN i.attempts = 0 THEN v.status
                                             ELSE i.product_status_before END
            FROM unnest(CAST(:ids AS bigint[]), CAST(:bids AS numeric[]),
                        CAST(:statuses AS text[])) AS v(id, bid, status)
            WHERE i.id = v.id AND i.status = 'pending'
            """,
            ids=[i for i, _ in sent],
            bids=[None if s is None else s.bid for _, s in sent],
            statuses=[None if s is None else s.status for _, s in sent],
        )
        return False

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

    def record_outcomes(self, chunk: ClaimedChunk, outcomes: Sequence[Outcome]) -> set[int]:
        """One statement for any number of SKUs; only pending items take an outcome.
        Returns the ids of the items that took one."""
        if not outcomes:
            return set()

        def bid(s: Any, attr: str) -> Decimal | None:
            return None if s is None else getattr(s, attr)

        result = self._exec(
            f"""
            UPDATE items i SET status = v.status, error_kind = v.error_kind,
                error_code = v.error_code, error_message = v.error_message,
                bid_before = CASE WHEN i.attempts > 0 THEN i.bid_before ELSE v.bid_before END,
                product_status_before = CASE WHEN i.attempts > 0 THEN i.product_status_before
                                             ELSE v.status_before END,
                bid_after = v.bid_after, product_status_after = v.status_after,
                trace_id = v.trace_id, finished_at = now()
            FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]),
                        CAST(:kinds AS text[]), CAST(:codes AS text[]), CAST(:messages AS text[]),
                        CAST(:bid_before AS numeric[]), CAST(:status_before AS text[]),
                        CAST(:bid_after AS numeric[]), CAST(:status_after AS text[]),
                        CAST(:traces AS text[]))
                 AS v(id, status, error_kind, error_code, error_message, bid_before,
                      status_before, bid_after, status_after, trace_id)
            WHERE i.id = v.id AND i.status = 'pending' AND {self._fence(chunk)}
            RETURNING i.id
            """,
            ids=[o.item_id for o in outcomes],
            statuses=[o.status.value for o in outcomes],
            kinds=[o.error_kind.value if o.error_kind else None for o in outcomes],
            codes=[o.error_code for o in outcomes],
            messages=[o.error_message for o in outcomes],
            bid_before=[bid(o.before, "bid") for o in outcomes],
            status_before=[bid(o.before, "status") for o in outcomes],
            bid_after=[bid(o.after, "bid") for o in outcomes],
            status_after=[bid(o.after, "status") for o in outcomes],
            traces=[o.trace_id for o in outcomes],
        )
        recorded = set(result.scalars())
        if not recorded and not self._still_mine(chunk):
            raise LeaseLost(f"chunk {chunk.id} attempt {chunk.attempt}")
        return recorded

    def _still_mine(self, chunk: ClaimedChunk) -> bool:
        return bool(self._exec(f"SELECT {self._fence(chunk)}").scalar())

    def park_chunk(self, chunk: ClaimedChunk, delay_seconds: float, error: str) -> None:
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

    def finish_chunk(
        self, chunk: ClaimedChunk, status: ChunkStatus = ChunkStatus.DONE, error: str | None = None
    ) -> FinishedChunk:
        """Close the chunk and, when it was the job's last, roll the job up: one transaction."""
        self._exec("SELECT id FROM jobs WHERE id = :job FOR UPDATE", job=chunk.job_id)
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
        job_status = self._roll_up_if_last(chunk.job_id)
        return FinishedChunk(
            counts={k: int(v) for k, v in dict(row.counts).items()},
            job_status=job_status,
            next_chunks=self.next_for_line_items([chunk.line_item_id]),
        )

    def _roll_up_if_last(self, job_id: int) -> JobStatus | None:
        remaining = self._exec(
            f"SELECT count(*) FROM chunks WHERE job_id = :job AND status IN {ACTIVE}", job=job_id
        ).scalar_one()
        if remaining:
            return None
        counts = self.item_counts(job_id)
        job = self._exec(
            "SELECT (options ->> 'cancel_requested') = 'true' AS cancel FROM jobs WHERE id = :job",
            job=job_id,
        ).one()
        final = job_final_status(counts, cancel_requested=bool(job.cancel))
        result = self._exec(
            f"""
            UPDATE jobs SET status = :status, counts = CAST(:counts AS jsonb), finished_at = now()
            WHERE id = :job AND status IN {_in(sources(JOB_TRANSITIONS, final))}
            """,
            job=job_id,
            status=final.value,
            counts=json.dumps(counts),
        )
        return final if result.rowcount else None

    def failure_summary(self, job_id: int) -> list[FailureGroup]:
        """Failed SKUs grouped by why, most common first, each with one example message."""
        rows = self._exec(
            """
            SELECT error_kind, error_code, count(*) AS n, min(error_message) AS example
            FROM items WHERE job_id = :job AND status = 'failed'
            GROUP BY error_kind, error_code ORDER BY n DESC, error_kind
            """,
            job=job_id,
        ).all()
        return [FailureGroup(r.error_kind, r.error_code, int(r.n), r.example) for r in rows]

    def request_cancel(self, job_id: int) -> tuple[JobStatus, list[int]] | None:
        """Cancel a job: chunks not started end now with their SKUs `cancelled`; running ones
        stop at their next safe point. Returns the job's status and the line items freed."""
        job = self._exec("SELECT status FROM jobs WHERE id = :job FOR UPDATE", job=job_id).first()
        if job is None:
            return None
        if JobStatus(job.status) in JOB_TERMINAL:
            return JobStatus(job.status), []
        self._exec(
            """UPDATE jobs SET options = options || '{"cancel_requested": true}' WHERE id = :job""",
            job=job_id,
        )
        stopped = self._exec(
            f"""
            UPDATE chunks SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
            WHERE job_id = :job AND status IN {CANCEL_NOW}
            RETURNING line_item_id
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
        final = self._roll_up_if_last(job_id)
        return final or JobStatus(job.status), freed

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

    def item_counts(self, job_id: int) -> dict[str, int]:
        rows = self._exec(
            "SELECT status, count(*) AS n FROM items WHERE job_id = :job GROUP BY status",
            job=job_id,
        ).all()
        return {r.status: int(r.n) for r in rows}

    # --- reading -------------------------------------------------------------------------------

    def job_view(self, job_id: int) -> JobView | None:
        job = self._exec("SELECT * FROM jobs WHERE id = :job", job=job_id).first()
        if job is None:
            return None
        chunk_rows = self._exec(
            """
            SELECT status, count(*) AS n, sum(n_items) AS items,
                   coalesce(jsonb_agg(counts) FILTER (WHERE status NOT IN ('queued', 'running',
                       'parked')), '[]') AS done_counts
            FROM chunks WHERE job_id = :job GROUP BY status
            """,
            job=job_id,
        ).all()
        if JobStatus(job.status) in JOB_TERMINAL and job.counts:
            counts = {k: int(v) for k, v in job.counts.items()}
        else:
            counts = {}
            finished = 0
            for r in chunk_rows:
                for c in r.done_counts:
                    for k, v in c.items():
                        counts[k] = counts.get(k, 0) + int(v)
                        finished += int(v)
            pending = int(job.total) - finished
            if pending:
                counts[ItemStatus.PENDING] = counts.get(ItemStatus.PENDING, 0) + pending
        return JobView(
            id=int(job.id),
            status=JobStatus(job.status),
            submitted_by=job.submitted_by,
            priority=Priority(job.priority),
            dry_run=bool(job.dry_run),
            total=int(job.total),
            counts=counts,
            chunks={r.status: int(r.n) for r in chunk_rows},
            parent_job_id=job.parent_job_id,
            derived_reason=job.derived_reason,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            not_before=job.not_before,
        )

    def iter_items(self, job_id: int, batch: int = 5000) -> Iterator[sa.Row[Any]]:
        """All items of a job in input order (COPY keeps it in id order), in keyset batches."""
        last = 0
        while True:
            rows = self._exec(
                """
                SELECT * FROM items WHERE job_id = :job AND id > :last ORDER BY id LIMIT :batch
                """,
                job=job_id,
                last=last,
                batch=batch,
            ).all()
            yield from rows
            if len(rows) < batch:
                return
            last = rows[-1].id

    # --- listing, export, derived jobs ---------------------------------------------------------

    def job_ids_page(
        self, *, status: str | None, submitted_by: str | None, before: int | None, limit: int
    ) -> list[int]:
        """Job ids, newest first, below `before` (the keyset of the previous page)."""
        where = ["TRUE"]
        if status is not None:
            where.append("status = :status")
        if submitted_by is not None:
            where.append("submitted_by = :by")
        if before is not None:
            where.append("id < :before")
        return [
            int(i)
            for i in self._exec(
                f"SELECT id FROM jobs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT :limit",
                status=status,
                by=submitted_by,
                before=before,
                limit=limit,
            ).scalars()
        ]

    def job_options(self, job_id: int) -> dict[str, Any] | None:
        row = self._exec("SELECT options FROM jobs WHERE id = :job", job=job_id).first()
        return None if row is None else dict(row.options or {})

    def merge_job_options(self, job_id: int, options: dict[str, Any]) -> None:
        self._exec(
            "UPDATE jobs SET options = options || CAST(:options AS jsonb) WHERE id = :job",
            job=job_id,
            options=json.dumps(options),
        )

    def _item_where(self, flt: ItemFilter) -> str:
        where = ["job_id = :job"]
        if flt.statuses:
            where.append("status = ANY(:statuses)")
        if flt.error_kinds:
            where.append("error_kind = ANY(:kinds)")
        if flt.line_item_id is not None:
            where.append("line_item_id = :li")
        if flt.sku_id is not None:
            where.append("sku_id = :sku")
        return " AND ".join(where)

    def _item_params(self, job_id: int, flt: ItemFilter) -> dict[str, Any]:
        return {
            "job": job_id,
            "statuses": list(flt.statuses),
            "kinds": list(flt.error_kinds),
            "li": flt.line_item_id,
            "sku": flt.sku_id,
        }

    def last_item_id(self, job_id: int) -> int | None:
        """The id of the job's last row. Rows are numbered 1..total and ids follow row order
        (COPY), so this bounds every keyset scan of the job without reading past its items."""
        return cast(
            int | None,
            self._exec(
                f"""
                SELECT i.id FROM items i JOIN jobs j ON j.id = i.job_id
                WHERE i.job_id = :job AND i.status IN {_in(ItemStatus)}
                  AND i.row_number = j.total
                """,
                job=job_id,
            ).scalar(),
        )

    def items_page(
        self, job_id: int, flt: ItemFilter, *, after: int, last: int, limit: int
    ) -> list[sa.Row[Any]]:
        """Items of the job matching the filter, in input order, with ids in (after, last]."""
        return list(
            self._exec(
                f"""
                SELECT id, row_number, line_item_id, sku_id, account_id, action, desired_bid,
                       status, error_kind, error_code, error_message, attempts, bid_before,
                       bid_after, product_status_before, product_status_after, trace_id,
                       finished_at
                FROM items WHERE {self._item_where(flt)} AND id > :after AND id <= :last
                ORDER BY id LIMIT :limit
                """,
                after=after,
                last=last,
                limit=limit,
                **self._item_params(job_id, flt),
            ).all()
        )

    def iter_filtered_items(
        self, job_id: int, flt: ItemFilter, batch: int = 5000
    ) -> Iterator[sa.Row[Any]]:
        """Every matching item in input order, a batch in memory at a time."""
        last = self.last_item_id(job_id)
        after = 0
        while last is not None:
            rows = self.items_page(job_id, flt, after=after, last=last, limit=batch)
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].id

    def count_items(self, job_id: int, flt: ItemFilter) -> int:
        return int(
            self._exec(
                f"SELECT count(*) FROM items WHERE {self._item_where(flt)}",
                **self._item_params(job_id, flt),
            ).scalar_one()
        )

    # --- HTTP API keys -------------------------------------------------------------------------

    def insert_api_key(self, name: str, key_hash: str, prefix: str) -> int:
        return int(
            self._exec(
                "INSERT INTO api_keys (name, key_hash, prefix) VALUES (:name, :hash, :prefix)"
                " RETURNING id",
                name=name,
                hash=key_hash,
                prefix=prefix,
            ).scalar_one()
        )

    def active_api_key(self, key_hash: str) -> tuple[str, str] | None:
        """(stored hash, submitter name) of the unrevoked key with this hash."""
        row = self._exec(
            "SELECT key_hash, name FROM api_keys WHERE key_hash = :hash AND revoked_at IS NULL",
            hash=key_hash,
        ).first()
        return None if row is None else (row.key_hash, row.name)

    def api_keys(self) -> list[ApiKeyRecord]:
        rows = self._exec(
            "SELECT id, name, prefix, created_at, revoked_at FROM api_keys ORDER BY id"
        ).all()
        return [ApiKeyRecord(r.id, r.name, r.prefix, r.created_at, r.revoked_at) for r in rows]

    def revoke_api_key(self, key_id: int) -> bool:
        """False if there is no such key; revoking a revoked key keeps its first revocation."""
        row = self._exec(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = :id"
            " RETURNING id",
            id=key_id,
        ).first()
        return row is not None

    # --- completion notifications --------------------------------------------------------------

    def claim_notification(self, job_id: int, attempt: int) -> str | None:
        """Count delivery attempt `attempt` (0-based) of a finished job's callback and return its
        URL; None when it is not due: no callback, delivered, not finished, or this attempt was
        already made (a duplicate message)."""
        row = self._exec(
            f"""
            UPDATE jobs SET notify_attempts = notify_attempts + 1
            WHERE id = :job AND callback_url IS NOT NULL AND notified_at IS NULL
              AND notify_attempts = :attempt AND status IN {_in(JOB_TERMINAL)}
            RETURNING callback_url
            """,
            job=job_id,
            attempt=attempt,
        ).first()
        return None if row is None else str(row.callback_url)

    def record_notification(
        self, job_id: int, *, status: int | None, error: str | None, delivered: bool
    ) -> None:
        self._exec(
            """
            UPDATE jobs SET notify_last_status = :status, notify_last_error = :error,
                notified_at = CASE WHEN :delivered THEN now() END
            WHERE id = :job
            """,
            job=job_id,
            status=status,
            error=None if error is None else error[:2000],
            delivered=delivered,
        )

    def notification_state(self, job_id: int) -> NotificationState | None:
        """None when the job has no callback."""
        row = self._exec(
            """
            SELECT notify_attempts, notify_last_status, notify_last_error, notified_at
            FROM jobs WHERE id = :job AND callback_url IS NOT NULL
            """,
            job=job_id,
        ).first()
        if row is None:
            return None
        return NotificationState(
            int(row.notify_attempts), row.notify_last_status, row.notify_last_error, row.notified_at
        )

    def unsent_notifications(self, older_than_seconds: float, limit: int = 1000) -> list[int]:
        """Finished jobs whose callback was never attempted: their message was lost, or the job
        ended without a runner (a cancel of chunks that had not started)."""
        return [
            int(i)
            for i in self._exec(
                """
                SELECT id FROM jobs
                WHERE callback_url IS NOT NULL AND notified_at IS NULL AND notify_attempts = 0
                  AND finished_at < now() - make_interval(secs => :age)
                ORDER BY finished_at LIMIT :limit
                """,
                age=older_than_seconds,
                limit=limit,
            ).scalars()
        ]

    # --- operations: state for the metrics, retention ------------------------------------------

    def status_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Jobs by status and chunks by status, for the gauges computed at scrape time."""
        jobs = self._exec("SELECT status, count(*) AS n FROM jobs GROUP BY status").all()
        chunks = self._exec("SELECT status, count(*) AS n FROM chunks GROUP BY status").all()
        return {r.status: int(r.n) for r in jobs}, {r.status: int(r.n) for r in chunks}

    def jobs_to_prune(self, older_than_days: float, limit: int = 100) -> list[int]:
        """Finished jobs, finished longer ago than that, whose items are still stored."""
        return [
            int(i)
            for i in self._exec(
                f"""
                SELECT id FROM jobs
                WHERE finished_at IS NOT NULL AND items_pruned_at IS NULL
                  AND finished_at < now() - make_interval(days => 0, secs => :age)
                  AND status IN {_in(JOB_TERMINAL)}
                ORDER BY finished_at LIMIT :limit
                """,
                age=older_than_days * 86400,
                limit=limit,
            ).scalars()
        ]

    def delete_item_batch(self, job_id: int, batch: int) -> int:
        """At most `batch` items of the job, in one short statement: row locks on those rows
        only, never a table lock, so running jobs are not held up. The caller commits."""
        return int(
            self._exec(
                """
                DELETE FROM items WHERE id IN (
                    SELECT id FROM items WHERE job_id = :job LIMIT :batch
                )
                """,
                job=job_id,
                batch=batch,
            ).rowcount
        )

    def mark_items_pruned(self, job_id: int) -> None:
        self._exec("UPDATE jobs SET items_pruned_at = now() WHERE id = :job", job=job_id)
