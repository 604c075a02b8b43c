"""Reading jobs: one job (with why its SKUs failed), its progress, why it waits, pages of jobs,
its items (a page, a stream, a CSV), and one SKU's history across jobs."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from threading import Lock
from typing import TextIO

from sqlalchemy.orm import Session

from worker.db.chunks import ChunkRepository
from worker.db.items import ItemRepository
from worker.db.jobs import JobRepository
from worker.db.notifications import NotificationRepository
from worker.db.records import FailureGroup, ItemFilter, JobFilter, JobRecord
from worker.domain.enums import JobStatus
from worker.domain.transitions import JOB_TERMINAL
from worker.domain.validation import INT64_MAX, SKU_MAX_LEN, shown
from worker.jobs.base import JobsBase
from worker.jobs.documents import (
    MAX_ITEMS_PAGE,
    MAX_JOBS_PAGE,
    Blocker,
    HistoryPage,
    ItemDocument,
    ItemPage,
    ItemQuery,
    JobDocument,
    JobPage,
    JobSummary,
    Waiting,
)
from worker.jobs.errors import InvalidQuery
from worker.jobs.export import history_entry, item_document, write_csv
from worker.jobs.keys import name_problem
from worker.jobs.paging import decode_cursor, encode_cursor, page_size
from worker.jobs.views import job_document, job_summary


class _Kept:
    """A small thread-safe LRU of the failure groups of ended jobs, per process."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int], list[FailureGroup]] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple[str, int]) -> list[FailureGroup] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, int], groups: list[FailureGroup]) -> None:
        with self._lock:
            self._items[key] = groups
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_ENDED_FAILURES = _Kept(512)


def _filter(query: ItemQuery) -> ItemFilter:
    return ItemFilter(
        statuses=(query.status.value,) if query.status else (),
        error_kinds=(query.error_kind.value,) if query.error_kind else (),
        line_item_id=query.line_item_id,
        sku_id=query.sku_id,
    )


class Reading(JobsBase):
    def _failures(self, session: Session, record: JobRecord) -> list[FailureGroup]:
        """Why the job's SKUs failed. Grouping them reads every failed item (0.4 s for 40,000
        of a million-SKU job); once the job has ended they never change, so they are kept."""
        if record.status not in JOB_TERMINAL:
            return ItemRepository(session).failure_summary(record.id)
        key = (self.engine.url.render_as_string(hide_password=True), record.id)
        found = _ENDED_FAILURES.get(key)
        if found is None:
            found = ItemRepository(session).failure_summary(record.id)
            _ENDED_FAILURES.put(key, found)
        return found

    def _document(self, session: Session, job_id: int) -> JobDocument:
        record = self._record(session, job_id)
        return job_document(
            record,
            self._failures(session, record),
            NotificationRepository(session).state(job_id),
            self.settings.criteo_rate_limit_per_minute,
            self.settings.max_change_ratio,
        )

    def get(self, job_id: int) -> JobDocument:
        """The job with why its SKUs failed and how its notification went."""
        with Session(self.engine) as session:
            return self._document(session, job_id)

    def summary(self, job_id: int) -> JobSummary:
        """The job's status and counts only: what a progress display polls."""
        with Session(self.engine) as session:
            return job_summary(
                self._record(session, job_id), self.settings.criteo_rate_limit_per_minute
            )

    def waiting(self, job_id: int) -> Waiting:
        """Why the job's unfinished chunks wait: behind which earlier jobs, until when they are
        scheduled or parked (and why), how many only wait for a worker."""
        with Session(self.engine) as session:
            self._record(session, job_id)
            found = ChunkRepository(session).waiting(job_id)
        return Waiting(
            job_id=job_id,
            running=found.running,
            ready=found.ready,
            behind=found.behind,
            blockers=[
                Blocker(job_id=b.job_id, line_item_id=str(b.line_item_id), chunks=b.chunks)
                for b in found.blockers
            ],
            scheduled=found.scheduled,
            scheduled_until=found.scheduled_until,
            parked=found.parked,
            parked_until=found.parked_until,
            last_error=found.last_error,
        )

    def list_jobs(
        self,
        *,
        status: str | None = None,
        submitted_by: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        dry_run: bool | None = None,
        parent_job_id: int | None = None,
    ) -> JobPage:
        """Jobs, newest first, a page at a time; created in [created_after, created_before),
        dry runs or not, children of a job (its retries, reverts and runs)."""
        if status is not None and status not in {s.value for s in JobStatus}:
            choices = ", ".join(s.value for s in JobStatus)
            raise InvalidQuery(f"status {shown(status)} is not one of {choices}")
        if submitted_by is not None and (problem := name_problem(submitted_by)):
            raise InvalidQuery(f"submitted_by: {problem}")
        limit = page_size(limit, MAX_JOBS_PAGE)
        if not self.caller.sees_all:
            if submitted_by not in (None, self.caller.name):
                return JobPage(jobs=[], next_cursor=None)
            submitted_by = self.caller.name
        with Session(self.engine) as session:
            repo = JobRepository(session)
            ids = repo.page_ids(
                status=status,
                submitted_by=submitted_by,
                before=decode_cursor("j", cursor),
                limit=limit + 1,
                flt=JobFilter(created_after, created_before, dry_run, parent_job_id),
            )
            records = repo.records(ids[:limit])
        rate = self.settings.criteo_rate_limit_per_minute
        jobs = [job_summary(r, rate) for r in records]
        more = len(ids) > limit
        return JobPage(jobs=jobs, next_cursor=encode_cursor("j", jobs[-1].id) if more else None)

    def items(
        self, job_id: int, query: ItemQuery, *, cursor: str | None = None, limit: int = 100
    ) -> ItemPage:
        """A page of the job's items in input order."""
        flt = _filter(query)
        limit = page_size(limit, MAX_ITEMS_PAGE)
        after = decode_cursor("i", cursor) or 0
        with Session(self.engine) as session:
            dry_run = self._record(session, job_id).dry_run
            repo = ItemRepository(session)
            last = repo.last_id(job_id)
            rows = (
                []
                if last is None
                else repo.page(job_id, flt, after=after, last=last, limit=limit + 1)
            )
        page = [item_document(r, dry_run=dry_run) for r in rows[:limit]]
        more = len(rows) > limit
        return ItemPage(
            items=page, next_cursor=encode_cursor("i", rows[limit - 1].id) if more else None
        )

    def iter_items(self, job_id: int, query: ItemQuery) -> Iterator[ItemDocument]:
        """Every matching item, streamed (a JSON export of any size). A missing job raises
        here, before the first item."""
        flt = _filter(query)
        with Session(self.engine) as session:
            dry_run = self._record(session, job_id).dry_run
        return self._stream(job_id, flt, dry_run)

    def _stream(self, job_id: int, flt: ItemFilter, dry_run: bool) -> Iterator[ItemDocument]:
        with Session(self.engine) as session:
            for row in ItemRepository(session).iter_filtered(job_id, flt):
                yield item_document(row, dry_run=dry_run)

    def export_csv(self, job_id: int, out: TextIO, query: ItemQuery) -> int:
        """Write the matching items as the export CSV (see `worker.jobs.export`), streamed;
        returns the rows written."""
        flt = _filter(query)
        with Session(self.engine) as session:
            self._record(session, job_id)
            return write_csv(ItemRepository(session).iter_filtered(job_id, flt), out)

    def history(
        self, line_item_id: int, sku_id: str, *, cursor: str | None = None, limit: int = 50
    ) -> HistoryPage:
        """Every change promobulk made, tried or planned for a (line item, SKU), across jobs,
        newest job first. A submitter sees its own jobs' entries only."""
        if not 0 < line_item_id <= INT64_MAX:
            raise InvalidQuery("line_item_id: must be a positive 64-bit integer")
        if not 0 < len(sku_id) <= SKU_MAX_LEN:
            raise InvalidQuery(f"sku_id: must have 1 to {SKU_MAX_LEN} characters")
        limit = page_size(limit, MAX_JOBS_PAGE)
        with Session(self.engine) as session:
            rows = ItemRepository(session).history(
                line_item_id,
                sku_id,
                submitted_by=None if self.caller.sees_all else self.caller.name,
                before=decode_cursor("h", cursor),
                limit=limit + 1,
            )
        more = len(rows) > limit
        return HistoryPage(
            entries=[history_entry(r) for r in rows[:limit]],
            next_cursor=encode_cursor("h", rows[limit - 1].job_id) if more else None,
        )
