"""Item rows, one per SKU change: streamed in with COPY, read by a chunk's runner, given their
outcome in one statement per call, listed and exported in input order, pruned."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from worker.db.records import ClaimedChunk, Duplicate, FailureGroup, ItemFilter, ItemRow
from worker.db.sql import LeaseLost, Repo, fence, in_list
from worker.domain.enums import Action, ItemStatus
from worker.domain.planner import Outcome, Snapshot, WantedItem
from worker.domain.validation import ItemSpec

_ITEM_COLUMNS = """id, row_number, line_item_id, sku_id, account_id, action, desired_bid,
    status, error_kind, error_code, error_message, attempts, bid_before, bid_after,
    product_status_before, product_status_after, trace_id, note, finished_at"""
_QUALIFIED_ITEM_COLUMNS = ", ".join(f"i.{c.strip()}" for c in _ITEM_COLUMNS.split(","))


def _bids(snapshots: Sequence[Snapshot | None]) -> list[Decimal | None]:
    return [None if s is None else s.bid for s in snapshots]


def _statuses(snapshots: Sequence[Snapshot | None]) -> list[str | None]:
    return [None if s is None else s.status for s in snapshots]


class ItemRepository(Repo):
    # --- submission ----------------------------------------------------------------------------

    def copy(self, job_id: int, specs: Iterable[ItemSpec]) -> int:
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

    def duplicates(self, job_id: int, cap: int) -> tuple[list[Duplicate], int]:
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
        found = [
            Duplicate(n, row.r[0], int(row.line_item_id), row.sku_id)
            for row in rows
            for n in row.r[1:]
        ]
        found.sort(key=lambda d: d.row)
        return found[:cap], int(rows[0].total) if rows else 0

    def analyze(self) -> None:
        """Give the planner statistics for a large job just stored: until autovacuum gets to it,
        the per-chunk queries would be planned for an empty table."""
        self._exec("ANALYZE items, chunks")

    # --- a chunk's runner ----------------------------------------------------------------------

    def pending(self, chunk: ClaimedChunk) -> list[WantedItem]:
        """The chunk's SKUs still without an outcome.

        Filtered here rather than in SQL: with no `status` predicate the (job, line item, SKU)
        index is the only good plan, even before the fresh table has statistics (a status
        predicate could steer the planner to the status index and a scan of the whole job).
        """
        rows = self._exec(
            """
            SELECT id, sku_id, account_id, action, desired_bid, attempts, status FROM items
            WHERE job_id = :job AND line_item_id = :li ORDER BY id
            """,
            job=chunk.job_id,
            li=chunk.line_item_id,
        ).all()
        return [
            WantedItem(
                int(r.id),
                r.sku_id,
                Action(r.action),
                r.desired_bid,
                int(r.attempts),
                account_id=r.account_id,
            )
            for r in rows
            if r.status == ItemStatus.PENDING
        ]

    def count_attempt(self, sent: Sequence[tuple[int, Snapshot | None]]) -> None:
        """Before a write is sent: count it, and keep the SKUs' before-values from their first
        send, so a retry after a crash still knows what the product was before we touched it."""
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
            bids=_bids([s for _, s in sent]),
            statuses=_statuses([s for _, s in sent]),
        )

    def record_outcomes(self, chunk: ClaimedChunk, outcomes: Sequence[Outcome]) -> set[int]:
        """One statement for any number of SKUs; only pending items take an outcome, and only
        while the chunk is still this runner's. Returns the ids of the items that took one."""
        if not outcomes:
            return set()
        before = [o.before for o in outcomes]
        after = [o.after for o in outcomes]

        result = self._exec(
            f"""
            UPDATE items i SET status = v.status, error_kind = v.error_kind,
                error_code = v.error_code, error_message = v.error_message,
                bid_before = CASE WHEN i.attempts > 0 THEN i.bid_before ELSE v.bid_before END,
                product_status_before = CASE WHEN i.attempts > 0 THEN i.product_status_before
                                             ELSE v.status_before END,
                bid_after = v.bid_after, product_status_after = v.status_after,
                trace_id = v.trace_id, note = v.note, finished_at = now()
            FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]),
                        CAST(:kinds AS text[]), CAST(:codes AS text[]), CAST(:messages AS text[]),
                        CAST(:bid_before AS numeric[]), CAST(:status_before AS text[]),
                        CAST(:bid_after AS numeric[]), CAST(:status_after AS text[]),
                        CAST(:traces AS text[]), CAST(:notes AS text[]))
                 AS v(id, status, error_kind, error_code, error_message, bid_before,
                      status_before, bid_after, status_after, trace_id, note)
            WHERE i.id = v.id AND i.status = 'pending' AND {fence(chunk)}
            RETURNING i.id
            """,
            ids=[o.item_id for o in outcomes],
            statuses=[o.status.value for o in outcomes],
            kinds=[o.error_kind.value if o.error_kind else None for o in outcomes],
            codes=[o.error_code for o in outcomes],
            messages=[o.error_message for o in outcomes],
            bid_before=_bids(before),
            status_before=_statuses(before),
            bid_after=_bids(after),
            status_after=_statuses(after),
            traces=[o.trace_id for o in outcomes],
            notes=[o.note for o in outcomes],
        )
        recorded = set(result.scalars())
        if not recorded and not self._exec(f"SELECT {fence(chunk)}").scalar():
            raise LeaseLost(f"chunk {chunk.id} attempt {chunk.attempt}")
        return recorded

    # --- reading -------------------------------------------------------------------------------

    def counts(self, job_id: int) -> dict[str, int]:
        rows = self._exec(
            "SELECT status, count(*) AS n FROM items WHERE job_id = :job GROUP BY status",
            job=job_id,
        ).all()
        return {r.status: int(r.n) for r in rows}

    def _where(self, flt: ItemFilter) -> str:
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

    @staticmethod
    def _params(job_id: int, flt: ItemFilter) -> dict[str, Any]:
        return {
            "job": job_id,
            "statuses": list(flt.statuses),
            "kinds": list(flt.error_kinds),
            "li": flt.line_item_id,
            "sku": flt.sku_id,
        }

    def last_id(self, job_id: int) -> int | None:
        """The id of the job's last row. Rows are numbered 1..total and ids follow row order
        (COPY), so this bounds every keyset scan of the job without reading past its items."""
        value = self._exec(
            f"""
            SELECT i.id FROM items i JOIN jobs j ON j.id = i.job_id
            WHERE i.job_id = :job AND i.status IN {in_list(ItemStatus)}
              AND i.row_number = j.total
            """,
            job=job_id,
        ).scalar()
        return None if value is None else int(value)

    def page(
        self, job_id: int, flt: ItemFilter, *, after: int, last: int, limit: int
    ) -> list[ItemRow]:
        """Items of the job matching the filter, in input order, with ids in (after, last]."""
        return list(
            self._exec(
                f"""
                SELECT {_ITEM_COLUMNS}
                FROM items WHERE {self._where(flt)} AND id > :after AND id <= :last
                ORDER BY id LIMIT :limit
                """,
                after=after,
                last=last,
                limit=limit,
                **self._params(job_id, flt),
            ).all()
        )

    def iter_filtered(self, job_id: int, flt: ItemFilter, batch: int = 5000) -> Iterator[ItemRow]:
        """Every matching item in input order, a batch in memory at a time."""
        last = self.last_id(job_id)
        after = 0
        while last is not None:
            rows = self.page(job_id, flt, after=after, last=last, limit=batch)
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].id

    def history(
        self,
        line_item_id: int,
        sku_id: str,
        *,
        submitted_by: str | None,
        before: int | None,
        limit: int,
    ) -> list[ItemRow]:
        """The (line item, SKU)'s items across jobs, newest job first, with their job's
        submitter, dry-run flag, origin and creation time; only `submitted_by`'s jobs when
        given. One range of `ix_items_sku_id_line_item_id_job_id`, read backwards: a SKU is in
        a job at most once, so the job id is the keyset."""
        where = ["i.sku_id = :sku", "i.line_item_id = :li"]
        if before is not None:
            where.append("i.job_id < :before")
        if submitted_by is not None:
            where.append("j.submitted_by = :by")
        return list(
            self._exec(
                f"""
                SELECT {_QUALIFIED_ITEM_COLUMNS}, i.job_id, j.submitted_by, j.dry_run,
                    j.derived_reason, j.created_at AS job_created_at
                FROM items i JOIN jobs j ON j.id = i.job_id
                WHERE {" AND ".join(where)}
                ORDER BY i.job_id DESC LIMIT :limit
                """,
                sku=sku_id,
                li=line_item_id,
                before=before,
                by=submitted_by,
                limit=limit,
            ).all()
        )

    def count(self, job_id: int, flt: ItemFilter) -> int:
        return int(
            self._exec(
                f"SELECT count(*) FROM items WHERE {self._where(flt)}",
                **self._params(job_id, flt),
            ).scalar_one()
        )

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

    # --- retention -----------------------------------------------------------------------------

    def delete_batch(self, job_id: int, batch: int) -> int:
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
