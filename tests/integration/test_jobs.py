"""Listing, export, retry, revert and dry run against the real database, the real runner and the
simulator; the simulator, not our database, judges what reached the API."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import sqlalchemy as sa

from tests import shop
from tests.integration.inprocess import Run, outcomes, run_job
from worker.config import Settings
from worker.domain.access import operator
from worker.jobs.documents import ItemQuery, JobFields, RetryRequest, RevertRequest, parse
from worker.jobs.errors import (
    InvalidField,
    InvalidQuery,
    JobNotFound,
    NothingToDo,
)
from worker.jobs.export import EXPORT_COLUMNS
from worker.jobs.service import Jobs
from worker.simulator.control import SimulatorControl


def query(**filters: Any) -> ItemQuery:
    return ItemQuery.model_validate(filters)


def job_row(engine: sa.Engine, job_id: int) -> sa.Row[object]:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM jobs WHERE id = :j"), {"j": job_id}).one()


def test_a_night_ends_with_the_outcome_each_case_expects(
    engine: sa.Engine, night: Run, base: int
) -> None:
    job_id = night()
    assert outcomes(engine, job_id) == shop.expected(base)


def test_retry_makes_a_linked_child_of_exactly_the_failed_skus(
    jobs: Jobs,
    engine: sa.Engine,
    night: Run,
    base: int,
    settings: Settings,
    sim_control: SimulatorControl,
) -> None:
    job_id = night()
    failed = {k for k, (o, _) in shop.expected(base).items() if o == "failed"}
    child = jobs.acting_as(operator("ops")).retry(job_id, RetryRequest())
    assert child.created
    assert child.total == len(failed)
    assert set(outcomes(engine, child.id)) == failed
    row = job_row(engine, child.id)
    assert (row.parent_job_id, row.derived_reason, row.submitted_by) == (job_id, "retry", "ops")
    with engine.connect() as conn:
        same = conn.execute(
            sa.text(
                "SELECT count(*) FROM items c JOIN items p ON p.job_id = :p AND c.job_id = :c"
                " AND (p.line_item_id, p.sku_id, p.action, p.desired_bid IS NOT DISTINCT FROM"
                " c.desired_bid) = (c.line_item_id, c.sku_id, c.action, TRUE)"
            ),
            {"p": job_id, "c": child.id},
        ).scalar_one()
    assert same == len(failed)
    run_job(engine, child.id, settings)

    # Only the guardrail failure, with the guardrails lifted: now it goes through.
    lifted = jobs.acting_as(operator("ops")).retry(
        job_id,
        RetryRequest.model_validate(
            {"error_kinds": ["guardrail"], "options": {"guardrails": False}}
        ),
    )
    assert set(outcomes(engine, lifted.id)) == {(base, "p2")}
    run_job(engine, lifted.id, settings)
    assert outcomes(engine, lifted.id) == {(base, "p2"): ("succeeded", None)}
    assert sim_control.products(base)["p2"]["bidOverride"] == 9.0


def test_retry_and_revert_say_when_there_is_nothing_to_do(
    jobs: Jobs, engine: sa.Engine, night: Run, base: int
) -> None:
    job_id = night()
    with pytest.raises(NothingToDo, match="no failed SKUs of kind bid_not_applied"):
        jobs.retry(job_id, RetryRequest.model_validate({"error_kinds": ["bid_not_applied"]}))
    with pytest.raises(JobNotFound):
        jobs.retry(10**12, RetryRequest())
    with pytest.raises(JobNotFound):
        jobs.revert(10**12, RevertRequest())
    # A job still queued cannot be retried or reverted yet.
    queued = jobs.submit_rows(shop.rows(base + 500), JobFields()).id
    with pytest.raises(NothingToDo, match="is queued"):
        jobs.revert(queued, RevertRequest())
    jobs.cancel(queued)


def test_revert_restores_the_before_state_and_reports_what_it_cannot(
    jobs: Jobs,
    engine: sa.Engine,
    night: Run,
    base: int,
    settings: Settings,
    sim_control: SimulatorControl,
) -> None:
    job_id = night()
    child = jobs.acting_as(operator("ops")).revert(job_id, RevertRequest())
    assert child.skipped == {"removed_while_paused": 1}
    row = job_row(engine, child.id)
    assert (row.parent_job_id, row.derived_reason) == (job_id, "revert")
    assert row.options["guardrails"] is False
    assert {e["sku_id"] for e in row.options["revert_skipped"]["examples"]} == {"p7"}
    run_job(engine, child.id, settings)
    assert all(o == "succeeded" for o, _ in outcomes(engine, child.id).values())

    now = shop.products(sim_control.state(), base)
    before = shop.initial(base)
    for sku in set(before) | set(now):
        if sku in shop.NOT_REVERTIBLE:
            continue
        assert now.get(sku) == before.get(sku), sku
    assert "p9" not in now  # added by the parent, removed by the revert
    # Reported as not revertible, and left as the parent made them.
    assert "p7" not in now
    assert now["p3"] == (None, "active")  # its override cleared again, as before the parent

    # A second revert asks for what the first already did: every SKU is unchanged, the SKU
    # already removed (p9) included, and no write is sent.
    calls = sim_control.requests()["total"]
    again = jobs.revert(job_id, RevertRequest())
    run_job(engine, again.id, settings)
    assert {o for o, _ in outcomes(engine, again.id).values()} == {"unchanged"}
    assert outcomes(engine, again.id)[(base, "p9")] == ("unchanged", None)
    log = sim_control.requests(since=calls)["log"]
    assert {entry["endpoint"] for entry in log} <= {"token", "get"}


def test_a_dry_run_reads_but_never_writes(
    jobs: Jobs, engine: sa.Engine, night: Run, base: int, sim_control: SimulatorControl
) -> None:
    state = sim_control.state()
    job_id = night(dry_run=True)
    log = sim_control.requests(limit=100_000)
    endpoints = {entry["endpoint"] for entry in log["log"]}
    assert endpoints <= {"token", "get"}
    assert "get" in endpoints
    assert sim_control.state() == state

    # The same plan as a real run: every SKU gets the outcome a real run would give it, except
    # the one only the API can refuse (below its minimum bid), which would change.
    want = shop.expected(base)
    want[(base, "cheap")] = ("succeeded", None)
    assert outcomes(engine, job_id) == want
    page = jobs.items(job_id, query(), limit=1000)
    said = {i.sku_id: i.description for i in page.items}
    assert said["p1"] == "would change from bid 1.00 to bid 1.50"
    assert said["p5"] == "would change from active to paused"
    assert said["p9"] == "would change from not on the line item to active, bid 0.45"
    assert said["p8"] == "unchanged: already active, bid 0.40"
    assert said["p2"].startswith("would fail: guardrail: bid change from 1.00 to 9.00")
    assert said["p10"].startswith("would fail: not_on_line_item")
    with pytest.raises(NothingToDo, match="dry run"):
        jobs.revert(job_id, RevertRequest())


def test_listing_pages_through_everything_once_with_filters(
    jobs: Jobs, engine: sa.Engine, night: Run, base: int
) -> None:
    job_id = night(submitted_by=f"lister-{base}")
    seen: list[Any] = []
    cursor = None
    while True:
        page = jobs.items(job_id, query(), cursor=cursor, limit=5)
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [i.row for i in seen] == list(range(1, len(shop.rows(base)) + 1))
    failed = jobs.items(job_id, query(status="failed")).items
    assert {i.sku_id for i in failed} == {"p2", "cheap", "p10", "ghost"}
    assert jobs.items(job_id, query(error_kind="guardrail")).items[0].sku_id == "p2"
    one = jobs.items(job_id, query(line_item_id=base, sku_id="p1")).items
    assert (one[0].bid_before, one[0].bid_after) == ("1", "1.5")
    assert one[0].line_item_id == str(base)
    with pytest.raises(InvalidField, match="status"):
        parse(ItemQuery, {"status": "done"})
    with pytest.raises(InvalidQuery):
        jobs.items(job_id, query(), cursor="garbage!")
    with pytest.raises(JobNotFound):
        jobs.items(10**12, query())

    mine = jobs.list_jobs(submitted_by=f"lister-{base}")
    assert ([v.id for v in mine.jobs], mine.next_cursor) == ([job_id], None)
    first = jobs.list_jobs(limit=1)
    second = jobs.list_jobs(limit=1, cursor=first.next_cursor)
    assert second.jobs[0].id < first.jobs[0].id
    assert all(
        v.status == "completed_with_failures"
        for v in jobs.list_jobs(status="completed_with_failures").jobs
    )
    with pytest.raises(InvalidQuery):
        jobs.list_jobs(status="sleeping")


def test_an_export_of_the_failures_submits_again_as_it_is(
    jobs: Jobs, engine: sa.Engine, night: Run, base: int
) -> None:
    job_id = night()
    out = io.StringIO()
    assert jobs.export_csv(job_id, out, query(status="failed")) == 4
    text = out.getvalue()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    by_sku = {r["sku_id"]: r for r in rows}
    assert (by_sku["p2"]["bid_override"], by_sku["p2"]["bid_before"]) == ("9", "1")
    assert by_sku["p2"]["error_kind"] == "guardrail"
    assert by_sku["cheap"]["error_code"] == "bid-override-below-min-bid"
    resubmitted = jobs.submit_csv(io.StringIO(text), JobFields())
    assert resubmitted.total == 4
    # Leave nothing queued on these line items for later tests.
    jobs.cancel(resubmitted.id)


def test_no_cell_of_an_export_runs_as_a_formula_and_every_sku_comes_back(
    jobs: Jobs, engine: sa.Engine, night: Run, base: int
) -> None:
    job_id = night()
    out = io.StringIO()
    jobs.export_csv(job_id, out, query(sku_id=shop.FORMULA_SKU))
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["sku_id"] == "'" + shop.FORMULA_SKU
    assert row["bid_override"] == "0.6"  # a number stays a number
    again = jobs.submit_csv(io.StringIO(out.getvalue()), JobFields())
    assert jobs.items(again.id, query()).items[0].sku_id == shop.FORMULA_SKU
    jobs.cancel(again.id)


def test_bad_guardrail_options_are_refused_before_anything_is_stored(jobs: Jobs) -> None:
    with pytest.raises(InvalidField) as caught:
        jobs.submit_json(
            {
                "items": [{"line_item_id": "1", "sku_id": "a", "action": "pause"}],
                "options": {"max_change_ratio": "0.5"},
            }
        )
    assert caught.value.field == "options.max_change_ratio"
