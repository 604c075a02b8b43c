"""`Jobs`: every operation on jobs, one unit of work each, and the only way in for the CLI, the
HTTP API, the console, the Celery submit task, the demo and `promobulk up`.

Interfaces parse and render; they never open a database session. Settings and dispatch come in
as arguments. What an operation refuses on purpose is a `worker.jobs.errors.JobsError`.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from threading import Lock
from typing import Any, BinaryIO, TextIO

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from worker.config import Settings
from worker.db.chunks import ChunkRepository
from worker.db.engine import get_engine
from worker.db.items import ItemRepository
from worker.db.jobs import JobRepository
from worker.db.notifications import NotificationRepository
from worker.db.records import ChunkRef, Dispatch, FailureGroup, ItemFilter, JobFilter, JobRecord
from worker.domain.access import Caller, operator
from worker.domain.derive import Row
from worker.domain.enums import DerivedReason, ItemStatus, JobStatus
from worker.domain.transitions import JOB_TERMINAL
from worker.domain.validation import INT64_MAX, SKU_MAX_LEN, shown
from worker.jobs.derived import Skipped, retry_rows, revert_rows
from worker.jobs.documents import (
    MAX_ITEMS_PAGE,
    MAX_JOBS_PAGE,
    ApplyRequest,
    Blocker,
    DerivedJob,
    HistoryPage,
    ItemDocument,
    ItemPage,
    ItemQuery,
    JobDocument,
    JobFields,
    JobOptions,
    JobPage,
    JobSummary,
    RetryRequest,
    RevertPreview,
    RevertRequest,
    Submitted,
    Waiting,
    parse,
)
from worker.jobs.errors import (
    Forbidden,
    IdempotencyConflict,
    InvalidField,
    InvalidQuery,
    JobNotFound,
    NothingToDo,
)
from worker.jobs.export import history_entry, item_document, write_csv
from worker.jobs.intake import (
    ANALYZE_AFTER_ROWS,
    RowChecker,
    Rows,
    csv_values,
    json_items,
    mapping_values,
    store,
)
from worker.jobs.keys import ApiKeys, name_problem
from worker.jobs.paging import decode_cursor, encode_cursor, page_size
from worker.jobs.views import job_document, job_summary

# Per-job settings a retry keeps from its parent (bookkeeping such as a cancel request is not).
INHERITED_OPTIONS = tuple(JobOptions.model_fields)


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


@dataclass(frozen=True, slots=True)
class _Parent:
    """Where a derived job comes from."""

    job_id: int
    reason: DerivedReason


def _fields_digest(fields: JobFields, parent: _Parent | None) -> str:
    """The request's fields but its key, and where a derived job comes from."""
    document = fields.model_dump(mode="json", exclude={"idempotency_key"})
    origin = None if parent is None else [parent.job_id, parent.reason.value]
    return json.dumps([document, origin], sort_keys=True)


def _filter(query: ItemQuery) -> ItemFilter:
    return ItemFilter(
        statuses=(query.status.value,) if query.status else (),
        error_kinds=(query.error_kind.value,) if query.error_kind else (),
        line_item_id=query.line_item_id,
        sku_id=query.sku_id,
    )


class Jobs:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        dispatch: Dispatch | None = None,
        caller: Caller | None = None,
    ) -> None:
        """`dispatch` sends runnable chunks to the workers after their commit (None: they wait
        for the sweep). `caller` is who asks (see `domain.access`); an operator by default."""
        self.engine = engine
        self.settings = settings
        self.dispatch = dispatch
        self.caller = caller or operator()
        self.keys = ApiKeys(engine)

    @classmethod
    def open(
        cls, settings: Settings, dispatch: Dispatch | None = None, caller: Caller | None = None
    ) -> Jobs:
        """On the process's engine for the settings' database."""
        return cls(get_engine(settings.sqlalchemy_url), settings, dispatch, caller)

    def acting_as(self, caller: Caller) -> Jobs:
        """The same operations, asked by `caller` (an HTTP request's key)."""
        return Jobs(self.engine, self.settings, self.dispatch, caller)

    def _send(self, chunks: Sequence[ChunkRef]) -> None:
        if self.dispatch is not None and chunks:
            self.dispatch(chunks)

    # --- submitting ---------------------------------------------------------------------------

    def submit_csv(self, stream: BinaryIO | TextIO, fields: JobFields) -> Submitted:
        """A CSV with header `line_item_id,sku_id,action,bid_override[,account_id]`, as bytes
        (UTF-8) or text."""
        return self._submit(csv_values(stream), fields)

    def submit_rows(self, rows: Iterable[Mapping[str, object]], fields: JobFields) -> Submitted:
        """Rows as mappings keyed by the CSV's column names."""
        return self._submit(mapping_values(rows), fields)

    def submit_json(self, body: Mapping[str, Any]) -> Submitted:
        """A JSON document: `items` and the job's fields (an HTTP body, a Celery message)."""
        if "items" not in body:
            raise InvalidField("items", "is required")
        fields = parse(JobFields, {k: v for k, v in body.items() if k != "items"})
        return self.submit_rows(json_items(body["items"]), fields)

    def _submit(
        self,
        rows: Rows,
        fields: JobFields,
        *,
        parent: _Parent | None = None,
        extra_options: Callable[[], Mapping[str, Any]] | None = None,
    ) -> Submitted:
        """Store the job (all rows or nothing), commit, then dispatch its runnable chunks.
        `extra_options()` is merged into the job's options once every row has been read."""
        if not self.caller.submits:
            raise Forbidden(f"a {self.caller.role.value} key may not submit jobs")
        submitted_by = self.caller.name
        if problem := name_problem(submitted_by):
            raise InvalidField("submitted_by", problem)
        if fields.callback_url is not None and not self.settings.webhook_secret.get_secret_value():
            raise InvalidField(
                "callback_url", "callbacks are off: the server has no PROMOBULK_WEBHOOK_SECRET"
            )
        columns = {
            **fields.model_dump(exclude={"options"}),
            "options": fields.options.stored(),
            "submitted_by": submitted_by,
            "parent_job_id": parent.job_id if parent else None,
            "derived_reason": parent.reason.value if parent else None,
        }
        key = fields.idempotency_key
        fields_digest = _fields_digest(fields, parent)
        with Session(self.engine) as session:
            if key is not None and (earlier := self._by_key(session, submitted_by, key)):
                return self._same_request(session, earlier, rows, fields_digest)
            try:
                stored = store(
                    session,
                    rows,
                    columns,
                    max_bid=self.settings.max_bid,
                    fields_digest=fields_digest,
                    extra_options=extra_options,
                )
            except IntegrityError:
                # Another submit with the same key won the race: answer with its job.
                session.rollback()
                assert key is not None
                winner = self._by_key(session, submitted_by, key)
                assert winner is not None
                return self._same_request(session, winner, rows, fields_digest)
            session.commit()
            if stored.total >= ANALYZE_AFTER_ROWS:
                ItemRepository(session).analyze()
                session.commit()
            runnable = ChunkRepository(session).runnable(stored.job_id)
            session.commit()
        self._send(runnable)
        return Submitted(id=stored.job_id, total=stored.total, created=True, chunks=stored.chunks)

    def _by_key(self, session: Session, submitted_by: str, key: str) -> JobRecord | None:
        job = JobRepository(session).find_by_key(submitted_by, key)
        return None if job is None else self._record(session, job.id)

    def _same_request(
        self, session: Session, earlier: JobRecord, rows: Rows, fields_digest: str
    ) -> Submitted:
        """The earlier job of this key, when this is the same request again (as the payment
        APIs do, a key names one request: another one under it is a conflict)."""
        digest = RowChecker(self.settings.max_bid, fields_digest).check_all(rows)
        stored = earlier.row.request_digest
        if stored is not None and stored != digest:
            raise IdempotencyConflict(earlier.id)
        return Submitted(
            id=earlier.id,
            total=earlier.total,
            created=False,
            chunks=sum(earlier.chunks.values()),
        )

    # --- reading ------------------------------------------------------------------------------

    def _record(self, session: Session, job_id: int) -> JobRecord:
        """The job, if the caller may see it: to a caller that may not, it does not exist."""
        record = JobRepository(session).record(job_id)
        if record is None or not self.caller.sees(record.row.submitted_by):
            raise JobNotFound(job_id)
        return record

    def _changeable(self, session: Session, job_id: int) -> JobRecord:
        record = self._record(session, job_id)
        if not self.caller.changes(record.row.submitted_by):
            raise Forbidden(f"a {self.caller.role.value} key may not change job {job_id}")
        return record

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

    # --- changing -----------------------------------------------------------------------------

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
                parent=_Parent(job_id, DerivedReason.RETRY),
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
                parent=_Parent(job_id, DerivedReason.REVERT),
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
                mapping_values(rows), fields, parent=_Parent(job_id, DerivedReason.APPLY)
            )
        return self._derived(submitted, Skipped())

    @staticmethod
    def _inherited(parent: JobRecord) -> dict[str, Any]:
        return {k: v for k, v in parent.row.options.items() if k in INHERITED_OPTIONS}

    # --- operations ---------------------------------------------------------------------------

    def database_answers(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except SQLAlchemyError:
            return False
        return True

    def status_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Jobs by status and chunks by status (the metrics' gauges)."""
        with Session(self.engine) as session:
            return JobRepository(session).status_counts()
