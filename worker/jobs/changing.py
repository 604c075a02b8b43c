"""Changing jobs: cancel one, and derive a child from a finished one (retry its failures,
revert its changes, apply a dry run for real), each submitted as any job is."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Any

from sqlalchemy.orm import Session

from worker.db.chunks import ChunkRepository
from worker.db.items import ItemRepository
from worker.db.jobs import JobRepository
from worker.db.records import ChunkRef, ItemFilter, JobRecord
from worker.domain.derive import Row
from worker.domain.enums import DerivedReason, ItemStatus
from worker.domain.transitions import JOB_TERMINAL
from worker.jobs.derived import Skipped, retry_rows, revert_rows
from worker.jobs.documents import (
    ApplyRequest,
    DerivedJob,
    JobDocument,
    JobFields,
    JobOptions,
    RetryRequest,
    RevertPreview,
    RevertRequest,
    Submitted,
    parse,
)
from worker.jobs.errors import NothingToDo
from worker.jobs.intake import mapping_values
from worker.jobs.reading import Reading
from worker.jobs.submitting import Parent, Submitting

# Per-job settings a retry keeps from its parent (bookkeeping such as a cancel request is not).
INHERITED_OPTIONS = tuple(JobOptions.model_fields)


class Changing(Submitting, Reading):
    """Derived jobs are submitted (`Submitting`) and answered as documents (`Reading`)."""

    def cancel(self, job_id: int) -> JobDocument:
        """Chunks not started never run (their SKUs are `cancelled`); running ones stop at their
        next safe point; waiting ones that already sent SKUs run at once to read them back (a
        sent SKU gets its true outcome, never `cancelled`). Chunks of other jobs waiting behind
        the cancelled ones are dispatched."""
        with Session(self.engine) as session:
            self._changeable(session, job_id)
            jobs = JobRepository(session)
            status = jobs.lock_status(job_id)
            assert status is not None
            runnable: list[ChunkRef] = []
            if status not in JOB_TERMINAL:
                jobs.mark_cancel_requested(job_id)
                chunks = ChunkRepository(session)
                freed = chunks.cancel_not_started(job_id)
                jobs.roll_up_if_last(job_id)
                runnable = chunks.hurry_unsettled(job_id) + chunks.next_for_line_items(freed)
                session.commit()
        self._send(runnable)
        return self.get(job_id)

    def _finished_parent(self, session: Session, job_id: int, what: str) -> JobRecord:
        record = self._changeable(session, job_id)
        if record.status not in JOB_TERMINAL:
            raise NothingToDo(
                f"job {job_id} is {record.status.value}: {what} it once it has finished"
            )
        return record

    def _derived(self, submitted: Submitted, skipped: Skipped) -> DerivedJob:
        document = self.get(submitted.id)
        return DerivedJob(
            **document.model_dump(), skipped=dict(skipped.counts), created=submitted.created
        )

    def retry(self, job_id: int, request: RetryRequest) -> DerivedJob:
        """A child job of exactly the parent's failed SKUs (of these error kinds, when given),
        with the same actions and bids. It keeps the parent's priority, dry-run flag and
        options; `request.options` overrides them (e.g. a higher `max_change_ratio`)."""
        kinds = tuple(k.value for k in request.error_kinds or ())
        flt = ItemFilter(statuses=(ItemStatus.FAILED,), error_kinds=kinds)
        with Session(self.engine) as reading:
            parent = self._finished_parent(reading, job_id, "retry")
            items = ItemRepository(reading)
            if items.count(job_id, flt) == 0:
                which = f" of kind {', '.join(kinds)}" if kinds else ""
                raise NothingToDo(f"job {job_id} has no failed SKUs{which} to retry")
            inherited = self._inherited(parent)
            overrides = request.options.stored() if request.options else {}
            fields = JobFields(
                idempotency_key=request.idempotency_key,
                priority=parent.priority,
                dry_run=parent.dry_run,
                options=parse(JobOptions, {**inherited, **overrides}, "options"),
            )
            submitted = self._submit(
                mapping_values(retry_rows(items.iter_filtered(job_id, flt))),
                fields,
                parent=Parent(job_id, DerivedReason.RETRY),
            )
        return self._derived(submitted, Skipped())

    def revert(self, job_id: int, request: RevertRequest) -> DerivedJob:
        """A child job that puts back the recorded before-state of every SKU the parent changed.

        SKUs one action cannot restore are left out and counted by reason (`derive.NotRevertible`)
        in the child's options, in the same transaction as the child itself. Guardrails are off
        for the child: every target is a bid the SKU had. Targets are absolute, so changes made
        to those SKUs since the parent ran are overwritten too.
        """
        with Session(self.engine) as reading:
            parent = self._finished_parent(reading, job_id, "revert")
            skipped = Skipped()
            rows = self._revert_rows(reading, parent, skipped)
            first = next(rows, None)
            if first is None:
                why = f" ({skipped.summary()})" if skipped.counts else ""
                raise NothingToDo(f"job {job_id} changed no SKU that can be reverted{why}")
            fields = JobFields(
                idempotency_key=request.idempotency_key,
                priority=parent.priority,
                options=JobOptions(guardrails=False),
            )
            submitted = self._submit(
                mapping_values(chain([first], rows)),
                fields,
                parent=Parent(job_id, DerivedReason.REVERT),
                extra_options=skipped.stored,
            )
        if not submitted.created:  # an earlier revert with this key: report what it skipped
            with Session(self.engine) as session:
                skipped = Skipped.from_options(JobRepository(session).options(submitted.id) or {})
        return self._derived(submitted, skipped)

    @staticmethod
    def _revert_rows(session: Session, parent: JobRecord, skipped: Skipped) -> Iterator[Row]:
        if parent.dry_run:
            raise NothingToDo(f"job {parent.id} was a dry run: it changed nothing")
        succeeded = ItemFilter(statuses=(ItemStatus.SUCCEEDED,))
        return revert_rows(ItemRepository(session).iter_filtered(parent.id, succeeded), skipped)

    def revert_preview(self, job_id: int) -> RevertPreview:
        """What `revert` would make of the job now, without making it: the SKUs it would
        restore and those it would leave out, by reason (what a confirmation shows)."""
        with Session(self.engine) as reading:
            parent = self._finished_parent(reading, job_id, "revert")
            skipped = Skipped()
            revertible = sum(1 for _ in self._revert_rows(reading, parent, skipped))
        return RevertPreview(job_id=job_id, revertible=revertible, skipped=dict(skipped.counts))

    def apply(self, job_id: int, request: ApplyRequest) -> DerivedJob:
        """A child job that makes, for real, every change the finished dry run `job_id` planned:
        its rows as they came in, with its priority and options. What the dry run foresaw holds
        as long as nobody changes those line items in between."""
        with Session(self.engine) as reading:
            parent = self._finished_parent(reading, job_id, "run")
            if not parent.dry_run:
                raise NothingToDo(f"job {job_id} is not a dry run: it has already run for real")
            fields = JobFields(
                idempotency_key=request.idempotency_key,
                priority=parent.priority,
                options=parse(JobOptions, self._inherited(parent), "options"),
            )
            rows = retry_rows(ItemRepository(reading).iter_filtered(job_id, ItemFilter()))
            submitted = self._submit(
                mapping_values(rows), fields, parent=Parent(job_id, DerivedReason.APPLY)
            )
        return self._derived(submitted, Skipped())

    @staticmethod
    def _inherited(parent: JobRecord) -> dict[str, Any]:
        return {k: v for k, v in parent.row.options.items() if k in INHERITED_OPTIONS}
