"""A finished job's completion notification: its delivery attempts, counted on the job's row
before each is sent and fenced by their number, so a duplicated message never posts twice."""

from __future__ import annotations

from worker.db.records import NotificationState
from worker.db.sql import JOB_ENDED, Repo


class NotificationRepository(Repo):
    def claim(self, job_id: int, attempt: int) -> str | None:
        """Count delivery attempt `attempt` (0-based) of a finished job's callback and return its
        URL; None when it is not due: no callback, delivered, not finished, or this attempt was
        already made (a duplicate message)."""
        row = self._exec(
            f"""
            UPDATE jobs SET notify_attempts = notify_attempts + 1
            WHERE id = :job AND callback_url IS NOT NULL AND notified_at IS NULL
              AND notify_attempts = :attempt AND status IN {JOB_ENDED}
            RETURNING callback_url
            """,
            job=job_id,
            attempt=attempt,
        ).first()
        return None if row is None else str(row.callback_url)

    def record(
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

    def state(self, job_id: int) -> NotificationState | None:
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

    def unsent(self, older_than_seconds: float, limit: int = 1000) -> list[int]:
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
