"""Submitting a job: a CSV, rows or a JSON document, stored all or nothing, then dispatched.
A repeated idempotency key answers with its earlier job. Derived jobs come in here too."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, TextIO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from worker.db.chunks import ChunkRepository
from worker.db.items import ItemRepository
from worker.db.jobs import JobRepository
from worker.db.records import JobRecord
from worker.domain.enums import DerivedReason
from worker.jobs.base import JobsBase
from worker.jobs.documents import JobFields, Submitted, parse
from worker.jobs.errors import Forbidden, IdempotencyConflict, InvalidField
from worker.jobs.intake import (
    ANALYZE_AFTER_ROWS,
    RowChecker,
    Rows,
    csv_values,
    json_items,
    mapping_values,
    store,
)
from worker.jobs.keys import name_problem


@dataclass(frozen=True, slots=True)
class Parent:
    """Where a derived job comes from."""

    job_id: int
    reason: DerivedReason


def _fields_digest(fields: JobFields, parent: Parent | None) -> str:
    """The request's fields but its key, and where a derived job comes from."""
    document = fields.model_dump(mode="json", exclude={"idempotency_key"})
    origin = None if parent is None else [parent.job_id, parent.reason.value]
    return json.dumps([document, origin], sort_keys=True)


class Submitting(JobsBase):
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
        parent: Parent | None = None,
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
