"""Submission against a real Postgres: all or nothing, row-numbered errors, idempotency."""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.jobs import make_jobs, submit_rows
from worker.db.records import Dispatch
from worker.domain.access import operator
from worker.domain.enums import Priority
from worker.jobs.documents import JobFields, Submitted
from worker.jobs.errors import SubmissionRejected

HEADER = "line_item_id,sku_id,action,bid_override,account_id\n"


def counts(engine: sa.Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in ("jobs", "chunks", "items")
        )


def csv_submit(
    engine: sa.Engine,
    text: str,
    *,
    submitted_by: str = "cli",
    dispatch: Dispatch | None = None,
    **fields: object,
) -> Submitted:
    jobs = make_jobs(engine, dispatch, caller=operator(submitted_by))
    return jobs.submit_csv(io.StringIO(text), JobFields.model_validate(fields))


def test_a_job_is_stored_with_one_chunk_per_line_item(engine: sa.Engine) -> None:
    sent: list[Sequence[tuple[int, Priority]]] = []
    text = HEADER + (
        "11,a,set_bid,1.5,4242\n11,b,pause,,4242\n12,a,add,,\n12,c,remove,,\n13,z,unpause,,\n"
    )
    result = csv_submit(engine, text, priority=Priority.HIGH, dispatch=sent.append)
    assert result.created
    assert result.total == 5
    assert result.chunks == 3
    with engine.connect() as conn:
        chunks = conn.execute(
            sa.text(
                "SELECT line_item_id, n_items, status FROM chunks WHERE job_id = :j ORDER BY id"
            ),
            {"j": result.id},
        ).all()
        items = conn.execute(
            sa.text(
                "SELECT row_number, line_item_id, sku_id, action, desired_bid, account_id, status"
                " FROM items WHERE job_id = :j ORDER BY row_number"
            ),
            {"j": result.id},
        ).all()
        job = conn.execute(
            sa.text("SELECT status, total, priority FROM jobs WHERE id = :j"), {"j": result.id}
        ).one()
    assert [tuple(c) for c in chunks] == [(11, 2, "queued"), (12, 2, "queued"), (13, 1, "queued")]
    assert items[0] == (1, 11, "a", "set_bid", Decimal("1.5"), "4242", "pending")
    assert items[2].account_id is None
    assert tuple(job) == ("queued", 5, "high")
    # Dispatched after the commit, each chunk once, with the job's priority.
    assert len(sent) == 1
    assert len(sent[0]) == 3
    assert {p for _, p in sent[0]} == {Priority.HIGH}


def test_a_bad_file_stores_nothing_and_names_every_bad_row(engine: sa.Engine) -> None:
    before = counts(engine)
    text = HEADER + (
        "21,a,set_bid,1.5,\n"
        "-3,b,pause,,\n"  # row 2: line item
        "21,,pause,,\n"  # row 3: sku
        "21,c,set_bid,,\n"  # row 4: bid required
        "21,d,jump,,\n"  # row 5: action
        "21,e,pause,2.0,\n"  # row 6: bid not allowed
        "21,a,pause,,\n"  # row 7: duplicate of row 1
        "21,f,set_bid,99,\n"  # row 8: above max
    )
    with pytest.raises(SubmissionRejected) as caught:
        csv_submit(engine, text)
    found = [(e.row, e.field) for e in caught.value.errors]
    assert found == [
        (2, "line_item_id"),
        (3, "sku_id"),
        (4, "bid_override"),
        (5, "action"),
        (6, "bid_override"),
        (7, "sku_id"),
        (8, "bid_override"),
    ]
    assert caught.value.total_errors == 7
    assert "row 1" in caught.value.errors[5].reason
    assert counts(engine) == before


def test_errors_are_capped_but_all_counted(engine: sa.Engine) -> None:
    before = counts(engine)
    rows = [{"line_item_id": "x", "sku_id": f"s{n}", "action": "pause"} for n in range(250)]
    rows += [{"line_item_id": "5", "sku_id": "dup", "action": "pause"}] * 130
    with pytest.raises(SubmissionRejected) as caught:
        submit_rows(engine, rows)
    assert len(caught.value.errors) == 100
    assert caught.value.total_errors == 250 + 129
    assert counts(engine) == before


def test_a_header_without_required_columns_is_refused(engine: sa.Engine) -> None:
    with pytest.raises(SubmissionRejected) as caught:
        csv_submit(engine, "line_item_id,sku\n1,a\n")
    assert [(e.row, e.field) for e in caught.value.errors] == [
        (0, "sku_id"),
        (0, "action"),
        (0, "bid_override"),
    ]


def test_an_empty_job_is_refused(engine: sa.Engine) -> None:
    before = counts(engine)
    with pytest.raises(SubmissionRejected, match="no rows"):
        csv_submit(engine, HEADER)
    assert counts(engine) == before


def test_extra_columns_of_an_export_are_ignored(engine: sa.Engine) -> None:
    text = "line_item_id,sku_id,action,bid_override,outcome,error_kind\n31,a,pause,,failed,x\n"
    assert csv_submit(engine, text).total == 1


def test_the_same_idempotency_key_gives_the_same_job_even_when_racing(engine: sa.Engine) -> None:
    text = HEADER + "41,a,pause,,\n41,b,pause,,\n"
    results: list[Submitted] = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        results.append(csv_submit(engine, text, submitted_by="team-a", idempotency_key="k-41"))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = {r.id for r in results}
    assert len(ids) == 1
    assert sum(r.created for r in results) == 1
    with engine.connect() as conn:
        n_items = conn.execute(
            sa.text("SELECT count(*) FROM items WHERE job_id = :j"), {"j": ids.pop()}
        ).scalar_one()
    assert n_items == 2
    # Another submitter may use the same key for a job of its own.
    other = csv_submit(engine, text, submitted_by="team-b", idempotency_key="k-41")
    assert other.created
