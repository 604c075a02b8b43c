"""What the API taught by refusing a change is not paid for again (issue 12.4), and a cancel
never hides a change the API applied (issue 13.2): the real runner and client in this process,
the simulator judging what reached the API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from tests import shop
from tests.integration.inprocess import Run, outcomes, run_job, settings_for
from worker.config import Settings
from worker.criteo.client import CriteoClient
from worker.criteo.models import ProductWrite, WriteResult
from worker.criteo.runtime import ClientRuntime
from worker.domain.access import operator
from worker.domain.enums import Priority
from worker.jobs.documents import ItemQuery, JobFields
from worker.jobs.service import Jobs
from worker.runner import RunnerDeps, run_chunk
from worker.simulator.control import SimulatorControl


def item(engine: sa.Engine, job_id: int, sku: str) -> sa.Row[Any]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT * FROM items WHERE job_id = :j AND sku_id = :s"),
            {"j": job_id, "s": sku},
        ).one()


def facts_of(engine: sa.Engine, base: int, sku: str) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT kind, min_bid, refused_bid, job_id FROM refusal_facts"
                    " WHERE line_item_id = :li AND sku_id = :s ORDER BY id"
                ),
                {"li": base, "s": sku},
            ).all()
        )


def test_a_refusal_is_paid_for_once_then_predicted(
    engine: sa.Engine, night: Run, base: int, sim_control: SimulatorControl
) -> None:
    first = night()
    assert outcomes(engine, first)[(base, "cheap")] == ("failed", "validation")
    refused = item(engine, first, "cheap")
    assert [(f.kind, f.min_bid) for f in facts_of(engine, base, "cheap")] == [
        ("refused", None),
        ("min_bid", Decimal("0.50")),
    ]
    sent = sim_control.write_counts()[(base, "cheap")]

    second = night()
    assert outcomes(engine, second) == outcomes(engine, first) | {
        k: ("unchanged", None)
        for k, (o, _) in outcomes(engine, first).items()
        if o == "succeeded" and k[1] not in ("p6", "p7")
    } | {(base, "p6"): ("unchanged", None), (base, "p7"): ("unchanged", None)}
    assert sim_control.write_counts()[(base, "cheap")] == sent  # no call carried it again
    predicted = item(engine, second, "cheap")
    assert predicted.error_message.startswith("predicted, not sent: below min bid 0.50")
    assert f"seen in job {first} on " in predicted.error_message
    assert predicted.error_code == refused.error_code
    assert predicted.attempts == 0


def test_prediction_can_be_turned_off_and_the_api_asked_again(
    engine: sa.Engine, night: Run, base: int, sim_control: SimulatorControl
) -> None:
    night()
    sent = sim_control.write_counts()[(base, "cheap")]
    again = night(options={"predict": False})
    assert outcomes(engine, again)[(base, "cheap")] == ("failed", "validation")
    assert sim_control.write_counts()[(base, "cheap")] > sent
    assert not item(engine, again, "cheap").error_message.startswith("predicted")


def test_a_bid_below_a_known_minimum_is_raised_to_it_when_asked(
    engine: sa.Engine, night: Run, base: int, sim_control: SimulatorControl
) -> None:
    first = night()
    raised = night(options={"clamp_to_min_bid": True})
    assert outcomes(engine, raised)[(base, "cheap")] == ("succeeded", None)
    row = item(engine, raised, "cheap")
    assert (row.desired_bid, row.bid_after) == (Decimal("0.30"), Decimal("0.50"))
    assert row.note.startswith(f"raised to the min bid 0.50 (seen in job {first} on ")
    assert sim_control.products(base)["cheap"]["bidOverride"] == 0.5


def test_a_dry_run_says_what_the_facts_predict(
    engine: sa.Engine, night: Run, base: int, jobs: Jobs
) -> None:
    first = night()
    dry = night(dry_run=True)
    page = jobs.acting_as(operator("cli")).items(dry, _query(sku_id="cheap"))
    (cheap,) = page.items
    assert cheap.description.startswith("would fail: validation: predicted, not sent: below min")
    assert f"(seen in job {first} on " in cheap.description


def test_a_bid_the_api_accepts_forgets_the_minimum_that_said_it_would_not(
    engine: sa.Engine, night: Run, base: int, sim_control: SimulatorControl
) -> None:
    night()
    assert facts_of(engine, base, "cheap")
    cheaper = shop.scenario(base)
    for account in cheaper.accounts:
        for entry in account.catalog:
            entry.minBid = min(entry.minBid, Decimal("0.20"))
    sim_control.load(cheaper)
    # The job's own refusal stays (same job only); another job asking again is accepted.
    accepted = night(options={"predict": False})
    assert outcomes(engine, accepted)[(base, "cheap")] == ("succeeded", None)
    assert [f.kind for f in facts_of(engine, base, "cheap")] == ["refused"]


def test_expired_facts_predict_nothing(
    engine: sa.Engine, jobs: Jobs, base: int, settings: Settings, sim_control: SimulatorControl
) -> None:
    sim_control.load(shop.scenario(base))
    brief = settings_for(
        settings.criteo_api_url, settings.redis_url, PROMOBULK_FACTS_TTL_HOURS=1e-9
    )
    for _ in range(2):
        job = jobs.acting_as(operator("cli")).submit_rows(shop.rows(base), JobFields())
        run_job(engine, job.id, brief)
        assert not item(engine, job.id, "cheap").error_message.startswith("predicted")


def _query(**filters: Any) -> ItemQuery:
    return ItemQuery.model_validate(filters)


class _CancelDuringAppend(CriteoClient):
    """The real client; `during` runs while the chunk's first append is in flight (a cancel
    arriving then, or a fault switched on for what comes next)."""

    def __init__(self, real: CriteoClient, during: Callable[[], object]) -> None:
        self.__dict__.update(real.__dict__)
        self._during: Callable[[], object] | None = during

    async def append_products(
        self,
        line_item_id: int,
        items: Sequence[ProductWrite],
        *,
        priority: Priority = Priority.NORMAL,
    ) -> WriteResult:
        during, self._during = self._during, None
        if during is not None:
            during()
        return await super().append_products(line_item_id, items, priority=priority)


def _run_with(
    engine: sa.Engine, settings: Settings, job_id: int, during: Callable[[], object]
) -> None:
    async def go() -> None:
        runtime = await ClientRuntime.open(settings)
        try:
            deps = RunnerDeps(engine, _CancelDuringAppend(runtime.client, during), settings)
            with engine.connect() as conn:
                chunk = conn.execute(
                    sa.text("SELECT id FROM chunks WHERE job_id = :j"), {"j": job_id}
                ).scalar_one()
            await run_chunk(deps, chunk)
        finally:
            await runtime.aclose()

    asyncio.run(go())


ROWS = [
    ("p1", "set_bid", "1.50"),  # a bid on a product already there: a 204 proves nothing
    ("p3", "set_bid", "0.80"),
    ("p9", "add", "0.45"),
    ("p5", "pause", ""),  # the next call: never sent once the cancel is seen
]


def _submit(jobs: Jobs, base: int) -> int:
    rows = [
        {
            "line_item_id": base,
            "sku_id": s,
            "action": a,
            "bid_override": b or None,
            "account_id": shop.ACCOUNT,
        }
        for s, a, b in ROWS
    ]
    return jobs.acting_as(operator("cli")).submit_rows(rows, JobFields()).id


def test_a_cancel_while_a_write_is_in_flight_settles_what_was_sent(
    engine: sa.Engine, jobs: Jobs, base: int, settings: Settings, sim_control: SimulatorControl
) -> None:
    sim_control.load(shop.scenario(base))
    sim_control.configure(write_success="204")
    always = settings_for(
        settings.criteo_api_url, settings.redis_url, PROMOBULK_BID_READBACK="always"
    )
    job_id = _submit(jobs, base)
    _run_with(engine, always, job_id, lambda: jobs.acting_as(operator("ops")).cancel(job_id))

    assert outcomes(engine, job_id) == {
        (base, "p1"): ("succeeded", None),
        (base, "p3"): ("succeeded", None),
        (base, "p9"): ("succeeded", None),
        (base, "p5"): ("cancelled", None),
    }
    assert item(engine, job_id, "p1").bid_after == Decimal("1.50")
    assert jobs.acting_as(operator("ops")).get(job_id).status == "cancelled"
    preview = jobs.acting_as(operator("ops")).revert_preview(job_id)
    assert preview.revertible == 3  # revert puts back what the cancelled job did


def test_a_parked_chunk_that_sent_skus_settles_them_when_cancelled(
    engine: sa.Engine, jobs: Jobs, base: int, settings: Settings, sim_control: SimulatorControl
) -> None:
    sim_control.load(shop.scenario(base))
    sim_control.configure(write_success="204")
    failing_reads = settings_for(
        settings.criteo_api_url,
        settings.redis_url,
        PROMOBULK_BID_READBACK="always",
        CRITEO_RETRY_MAX_ATTEMPTS=1,
    )
    job_id = _submit(jobs, base)
    _run_with(
        engine,
        failing_reads,
        job_id,
        lambda: sim_control.configure(faults={"get": {"p_503": 1.0}}),
    )
    assert outcomes(engine, job_id)[(base, "p1")] == ("pending", None)  # parked before its read

    jobs.acting_as(operator("ops")).cancel(job_id)
    with engine.connect() as conn:
        chunk = conn.execute(
            sa.text("SELECT status, not_before <= now() AS due FROM chunks WHERE job_id = :j"),
            {"j": job_id},
        ).one()
    assert (chunk.status, chunk.due) == ("parked", True)  # not cancelled: it is sent at once
    sim_control.configure(faults={"get": {"p_503": 0.0}})
    run_job(engine, job_id, failing_reads)
    assert outcomes(engine, job_id) == {
        (base, "p1"): ("succeeded", None),
        (base, "p3"): ("succeeded", None),
        (base, "p9"): ("succeeded", None),
        (base, "p5"): ("succeeded", None),
    }


def test_under_anonymous_refusals_the_second_night_of_the_same_rows_only_reads(
    engine: sa.Engine, night: Run, base: int, sim_control: SimulatorControl
) -> None:
    """Mode b: a 400 names no SKU, so the first night pays for group testing; the second
    night finds everything in place or predicted, and sends no write at all."""
    sim_control.load(shop.scenario(base))
    sim_control.configure(validation_mode="b")
    first = night()
    assert outcomes(engine, first)[(base, "cheap")] == ("failed", "validation")
    log = sim_control.requests()["log"]
    logged, paid = len(log), sum(e["endpoint"] != "token" for e in log)
    second = night()
    calls = [e for e in sim_control.requests(since=logged)["log"] if e["endpoint"] != "token"]
    assert {e["endpoint"] for e in calls} == {"get"}, calls
    print(f"\nmode b: first night {paid} calls, second night {len(calls)} (reads only)")
    assert outcomes(engine, second)[(base, "cheap")] == ("failed", "validation")
    assert item(engine, second, "cheap").error_message.startswith("predicted, not sent: ")
