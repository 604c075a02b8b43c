"""Job rows: insert, read with their progress, list, options, cancel marks, the roll-up."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from worker.db.items import ItemRepository
from worker.db.models import Job
from worker.db.records import NO_JOB_FILTER, JobFilter, JobRecord
from worker.db.sql import ACTIVE, JOB_ENDED, Repo, in_list
from worker.domain.enums import ItemStatus, JobStatus
from worker.domain.rollup import job_final_status
from worker.domain.transitions import JOB_TERMINAL, JOB_TRANSITIONS, sources


class JobRepository(Repo):
    def find_by_key(self, submitted_by: str, idempotency_key: str) -> Job | None:
        return self.session.scalars(
            sa.select(Job).where(
                Job.submitted_by == submitted_by, Job.idempotency_key == idempotency_key
            )
        ).first()

    def insert(self, values: Mapping[str, Any]) -> int:
        """A new queued job from column values; any column of `Job` may be given."""
        statement = (
            sa.insert(Job)
            .values(status=JobStatus.QUEUED.value, total=0, counts={}, **values)
            .returning(Job.id)
        )
        return int(self.session.execute(statement).scalar_one())

    def set_total(self, job_id: int, total: int, request_digest: str) -> None:
        self._exec(
            "UPDATE jobs SET total = :total, request_digest = :digest WHERE id = :job",
            job=job_id,
            total=total,
            digest=request_digest,
        )

    def record(self, job_id: int) -> JobRecord | None:
        found = self.records([job_id])
        return found[0] if found else None

    def records(self, job_ids: Sequence[int]) -> list[JobRecord]:
        """The jobs with these ids, in that order, with their progress: three statements for
        any number of jobs."""
        if not job_ids:
            return []
        ids = list(job_ids)
        rows = {j.id: j for j in self.session.scalars(sa.select(Job).where(Job.id.in_(ids)))}
        chunks: dict[int, dict[str, int]] = {i: {} for i in rows}
        for r in self._exec(
            "SELECT job_id, status, count(*) AS n FROM chunks WHERE job_id = ANY(:ids)"
            " GROUP BY job_id, status",
            ids=ids,
        ):
            chunks[int(r.job_id)][r.status] = int(r.n)
        running = [i for i, j in rows.items() if j.status not in JOB_TERMINAL or not j.counts]
        finished: dict[int, dict[str, int]] = {i: {} for i in running}
        for r in self._exec(
            f"""
            SELECT c.job_id, e.key AS status, sum(e.value::bigint) AS n
            FROM chunks c CROSS JOIN LATERAL jsonb_each_text(c.counts) e
            WHERE c.job_id = ANY(:ids) AND c.status NOT IN {ACTIVE}
            GROUP BY c.job_id, e.key
            """,
            ids=running,
        ):
            finished[int(r.job_id)][r.status] = int(r.n)
        records = []
        for job_id in ids:
            job = rows.get(job_id)
            if job is None:
                continue
            if job_id in finished:
                counts = dict(finished[job_id])
                pending = job.total - sum(counts.values())
                if pending:
                    counts[ItemStatus.PENDING] = counts.get(ItemStatus.PENDING, 0) + pending
            else:
                counts = {k: int(v) for k, v in job.counts.items()}
            records.append(JobRecord(job, counts, chunks[job_id]))
        return records

    def page_ids(
        self,
        *,
        status: str | None,
        submitted_by: str | None,
        before: int | None,
        limit: int,
        flt: JobFilter = NO_JOB_FILTER,
    ) -> list[int]:
        """Job ids, newest first, below `before` (the keyset of the previous page)."""
        conditions = {
            "status = :status": status is not None,
            "submitted_by = :by": submitted_by is not None,
            "id < :before": before is not None,
            "created_at >= :after": flt.created_after is not None,
            "created_at < :until": flt.created_before is not None,
            "dry_run = :dry_run": flt.dry_run is not None,
            "parent_job_id = :parent": flt.parent_job_id is not None,
        }
        where = " AND ".join(["TRUE", *(c for c, used in conditions.items() if used)])
        return [
            int(i)
            for i in self._exec(
                f"SELECT id FROM jobs WHERE {where} ORDER BY id DESC LIMIT :limit",
                status=status,
                by=submitted_by,
                before=before,
                limit=limit,
                after=flt.created_after,
                until=flt.created_before,
                dry_run=flt.dry_run,
                parent=flt.parent_job_id,
            ).scalars()
        ]

    def options(self, job_id: int) -> dict[str, Any] | None:
        row = self._exec("SELECT options FROM jobs WHERE id = :job", job=job_id).first()
        return None if row is None else dict(row.options or {})

    def merge_options(self, job_id: int, options: Mapping[str, Any]) -> None:
        self._exec(
            "UPDATE jobs SET options = options || CAST(:options AS jsonb) WHERE id = :job",
            job=job_id,
            options=json.dumps(options),
        )

    def lock_status(self, job_id: int) -> JobStatus | None:
        """The job's status, its row locked until the transaction ends."""
        row = self._exec("SELECT status FROM jobs WHERE id = :job FOR UPDATE", job=job_id).first()
        return None if row is None else JobStatus(row.status)

    def mark_cancel_requested(self, job_id: int) -> None:
        self.merge_options(job_id, {"cancel_requested": True})

    def roll_up_if_last(self, job_id: int) -> JobStatus | None:
        """When no chunk of the job is active any more: its final status and counts, set once."""
        remaining = self._exec(
            f"SELECT count(*) FROM chunks WHERE job_id = :job AND status IN {ACTIVE}", job=job_id
        ).scalar_one()
        if remaining:
            return None
        counts = ItemRepository(self.session).counts(job_id)
        job = self._exec(
            "SELECT (options ->> 'cancel_requested') = 'true' AS cancel FROM jobs WHERE id = :job",
            job=job_id,
        ).one()
        final = job_final_status(counts, cancel_requested=bool(job.cancel))
        result = self._exec(
            f"""
            UPDATE jobs SET status = :status, counts = CAST(:counts AS jsonb), finished_at = now()
            WHERE id = :job AND status IN {in_list(sources(JOB_TRANSITIONS, final))}
            """,
            job=job_id,
            status=final.value,
            counts=json.dumps(counts),
        )
        return final if result.rowcount else None

    def status_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Jobs by status and chunks by status, for the gauges computed at scrape time."""
        jobs = self._exec("SELECT status, count(*) AS n FROM jobs GROUP BY status").all()
        chunks = self._exec("SELECT status, count(*) AS n FROM chunks GROUP BY status").all()
        return {r.status: int(r.n) for r in jobs}, {r.status: int(r.n) for r in chunks}

    def to_prune(self, older_than_days: float, limit: int = 100) -> list[int]:
        """Finished jobs, finished longer ago than that, whose items are still stored."""
        return [
            int(i)
            for i in self._exec(
                f"""
                SELECT id FROM jobs
                WHERE finished_at IS NOT NULL AND items_pruned_at IS NULL
                  AND finished_at < now() - make_interval(days => 0, secs => :age)
                  AND status IN {JOB_ENDED}
                ORDER BY finished_at LIMIT :limit
                """,
                age=older_than_days * 86400,
                limit=limit,
            ).scalars()
        ]

    def mark_pruned(self, job_id: int) -> None:
        self._exec("UPDATE jobs SET items_pruned_at = now() WHERE id = :job", job=job_id)
