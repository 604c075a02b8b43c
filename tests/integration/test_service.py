"""Listing, export, retry, revert and dry run against the real database, the real runner and the
simulator; the simulator, not our database, judges what reached the API."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from tests import shop
from tests.integration.inprocess import run_job, settings_for
from worker.config import Settings
from worker.export import EXPORT_COLUMNS
from worker.service import (
    InvalidQuery,
    JobNotFound,
    NothingToDo,
    cancel_job,
    export_items_csv,
    list_items,
    list_jobs,
    retry_failed,
    revert_job,
)
from worker.simulator.control import SimulatorControl
from worker.simulator.server import RunningSimulator
from worker.submission import JobRequest, SubmissionRejected, submit_csv, submit_rows

MAX_BID = Decimal("50")
_bases = itertools.count(3_100_000_000_000_000_000, 1_000)


@pytest.fixture
def base() -> int:
    return next(_bases)


@pytest.fixture
def settings(simulator: RunningSimulator, redis_url: str, clean_redis: object) -> Settings:
    return settings_for(simulator.url, redis_url)


Run = Callable[..., int]


@pytest.fixture
def night(engine: sa.Engine, sim_control: SimulatorControl, settings: Settings, base: int) -> Run:
    """Load the shop at `base`, submit its rows (JobRequest fields as keywords), run the job."""
    sim_control.load(shop.scenario(base))

    def go(**request: Any) -> int:
        job = submit_rows(
            engine,
            shop.rows(base),
            JobRequest(**request),
            max_bid=MAX_BID,
        )
        run_job(engine, job.job_id, settings)
        return job.job_id

    return go


def outcomes(engine: sa.Engine, job_id: int) -> dict[tuple[int, str], tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT line_item_id, sku_id, status, error_kind FROM items WHERE job_id = :j"),
            {"j": job_id},
        ).all()
    return {(r.line_item_id, r.sku_id): (r.status, r.error_kind) for r in rows}


def job_row(engine: sa.Engine, job_id: int) -> sa.Row[object]:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM jobs WHERE id = :j"), {"j": job_id}).one()


def test_a_night_ends_with_the_outcome_each_case_expects(
    engine: sa.Engine, night: Run, base: int
) -> None:
    job_id = night()
    assert outcomes(engine, job_id) == shop.expected(base)


def test_retry_makes_a_linked_child_of_exactly_the_failed_skus(
    engine: sa.Engine, night: Run, base: int, settings: Settings, sim_control: SimulatorControl
) -> None:
    job_id = night()
    failed = {k for k, (o, _) in shop.expected(base).items() if o == "failed"}
    child = retry_failed(engine, job_id, submitted_by="ops", dispatch=None)
    assert child.created
    assert child.total == len(failed)
    assert set(outcomes(engine, child.job_id)) == failed
    row = job_row(engine, child.job_id)
    assert (row.parent_job_id, row.derived_reason, row.submitted_by) == (job_id, "retry", "ops")
    with engine.connect() as conn:
        same = conn.execute(
            sa.text(
                "SELECT count(*) FROM items c JOIN items p ON p.job_id = :p AND c.job_id = :c"
                " AND (p.line_item_id, p.sku_id, p.action, p.desired_bid IS NOT DISTINCT FROM"
                " c.desired_bid) = (c.line_item_id, c.sku_id, c.action, TRUE)"
            ),
            {"p": job_id, "c": child.job_id},
        ).scalar_one()
    assert same == len(failed)
    run_job(engine, child.job_id, settings)

    # Only the guardrail failure, with the guardrails lifted: now it goes through.
    lifted = retry_failed(
        engine,
        job_id,
        error_kinds=["guardrail"],
        options={"guardrails": False},
        submitted_by="ops",
        dispatch=None,
    )
    assert set(outcomes(engine, lifted.job_id)) == {(base, "p2")}
    run_job(engine, lifted.job_id, settings)
    assert outcomes(engine, lifted.job_id) == {(base, "p2"): ("succeeded", None)}
    assert sim_control.products(base)["p2"]["bidOverride"] == 9.0


def test_retry_and_revert_say_when_there_is_nothing_to_do(
    engine: sa.Engine, night: Run, base: int
) -> None:
    job_id = night()
    with pytest.raises(NothingToDo, match="no failed SKUs of kind bid_not_applied"):
        retry_failed(
            engine, job_id, error_kinds=["bid_not_applied"], submitted_by="x", dispatch=None
        )
    with pytest.raises(InvalidQuery):
        retry_failed(engine, job_id, error_kinds=["nope"], submitted_by="x", dispatch=None)
    with pytest.raises(JobNotFound):
        retry_failed(engine, 10**12, submitted_by="x", dispatch=None)
    with pytest.raises(JobNotFound):
        revert_job(engine, 10**12, submitted_by="x", dispatch=None)
    # A job still queued cannot be retried or reverted yet.
    queued = submit_rows(engine, shop.rows(base + 500), JobRequest(), max_bid=MAX_BID).job_id
    with pytest.raises(NothingToDo, match="is queued"):
        revert_job(engine, queued, submitted_by="x", dispatch=None)
    cancel_job(engine, queued)


def test_revert_restores_the_before_state_and_reports_what_it_cannot(
    engine: sa.Engine,
    night: Run,
    base: int,
    settings: Settings,
    sim_control: SimulatorControl,
) -> None:
    job_id = night()
    child = revert_job(engine, job_id, submitted_by="ops", dispatch=None)
    assert child.skipped == {"bid_was_none": 1, "removed_while_paused": 1}
    row = job_row(engine, child.job_id)
    assert (row.parent_job_id, row.derived_reason) == (job_id, "revert")
    assert row.options["guardrails"] is False
    assert {e["sku_id"] for e in row.options["revert_skipped"]["examples"]} == {"p3", "p7"}
    run_job(engine, child.job_id, settings)
    assert all(o == "succeeded" for o, _ in outcomes(engine, child.job_id).values())

    now = shop.products(sim_control.state(), base)
    before = shop.initial(base)
    for sku in set(before) | set(now):
        if sku in shop.NOT_REVERTIBLE:
            continue
        assert now.get(sku) == before.get(sku), sku
    assert "p9" not in now  # added by the parent, removed by the revert
    # Reported as not revertible, and left as the parent made them.
    assert "p7" not in now
    assert now["p3"] == (Decimal("0.80"), "active")


def test_a_dry_run_reads_but_never_writes(
    engine: sa.Engine, night: Run, base: int, sim_control: SimulatorControl
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
    page = list_items(engine, job_id, limit=1000)
    said = {i["sku_id"]: i["description"] for i in page.items}
    assert said["p1"] == "would change from bid 1.00 to bid 1.50"
    assert said["p5"] == "would change from active to paused"
    assert said["p9"] == "would change from not on the line item to active, bid 0.45"
    assert said["p8"] == "unchanged: already active, bid 0.40"
    assert said["p2"].startswith("would fail: guardrail: bid change from 1.00 to 9.00")
    assert said["p10"].startswith("would fail: not_on_line_item")
    with pytest.raises(NothingToDo, match="dry run"):
        revert_job(engine, job_id, submitted_by="x", dispatch=None)


def test_listing_pages_through_everything_once_with_filters(
    engine: sa.Engine, night: Run, base: int
) -> None:
    job_id = night(submitted_by=f"lister-{base}")
    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        page = list_items(engine, job_id, cursor=cursor, limit=5)
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [i["row"] for i in seen] == list(range(1, len(shop.rows(base)) + 1))
    failed = list_items(engine, job_id, status="failed").items
    assert {i["sku_id"] for i in failed} == {"p2", "cheap", "p10", "ghost"}
    assert list_items(engine, job_id, error_kind="guardrail").items[0]["sku_id"] == "p2"
    one = list_items(engine, job_id, line_item_id=base, sku_id="p1").items
    assert (one[0]["bid_before"], one[0]["bid_after"]) == ("1", "1.5")
    assert one[0]["line_item_id"] == str(base)
    with pytest.raises(InvalidQuery):
        list_items(engine, job_id, status="done")
    with pytest.raises(InvalidQuery):
        list_items(engine, job_id, cursor="garbage!")
    with pytest.raises(JobNotFound):
        list_items(engine, 10**12)

    mine = list_jobs(engine, submitted_by=f"lister-{base}")
    assert ([v.id for v in mine.items], mine.next_cursor) == ([job_id], None)
    first = list_jobs(engine, limit=1)
    second = list_jobs(engine, limit=1, cursor=first.next_cursor)
    assert second.items[0].id < first.items[0].id
    assert all(
        v.status == "completed_with_failures"
        for v in list_jobs(engine, status="completed_with_failures").items
    )
    with pytest.raises(InvalidQuery):
        list_jobs(engine, status="sleeping")


def test_an_export_of_the_failures_submits_again_as_it_is(
    engine: sa.Engine, night: Run, base: int
) -> None:
    job_id = night()
    out = io.StringIO()
    assert export_items_csv(engine, job_id, out, status="failed") == 4
    text = out.getvalue()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    by_sku = {r["sku_id"]: r for r in rows}
    assert (by_sku["p2"]["bid_override"], by_sku["p2"]["bid_before"]) == ("9", "1")
    assert by_sku["p2"]["error_kind"] == "guardrail"
    assert by_sku["cheap"]["error_code"] == "bid-override-below-min-bid"
    resubmitted = submit_csv(engine, io.StringIO(text), JobRequest(), max_bid=MAX_BID)
    assert resubmitted.total == 4
    # Leave nothing queued on these line items for later tests.
    cancel_job(engine, resubmitted.job_id)


def test_no_cell_of_an_export_runs_as_a_formula_and_every_sku_comes_back(
    engine: sa.Engine, night: Run, base: int
) -> None:
    job_id = night()
    out = io.StringIO()
    export_items_csv(engine, job_id, out, sku_id=shop.FORMULA_SKU)
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["sku_id"] == "'" + shop.FORMULA_SKU
    assert row["bid_override"] == "0.6"  # a number stays a number
    again = submit_csv(engine, io.StringIO(out.getvalue()), JobRequest(), max_bid=MAX_BID)
    assert list_items(engine, again.job_id).items[0]["sku_id"] == shop.FORMULA_SKU
    cancel_job(engine, again.job_id)


def test_bad_guardrail_options_are_refused_before_anything_is_stored(engine: sa.Engine) -> None:
    with pytest.raises(SubmissionRejected) as caught:
        submit_rows(
            engine,
            [{"line_item_id": "1", "sku_id": "a", "action": "pause", "bid_override": ""}],
            JobRequest(options={"max_change_ratio": "0.5"}),
            max_bid=MAX_BID,
        )
    assert [(e.row, e.field) for e in caught.value.errors] == [(0, "options.max_change_ratio")]
