"""A mixed night of repricing through the real stack, judged by the simulator and an oracle:
first a large one, then a smaller one under every way the API may report refused SKUs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.e2e.conftest import E2E_RATE_LIMIT, FAST_RECOVERY, Stack, item_rows, make_stack
from tests.e2e.judge import (
    assert_outcomes,
    assert_state,
    calls_per_line_item,
    counts_of,
    dec,
)
from tests.e2e.oracle import expect
from tests.jobs import forget_facts
from worker.bench.minimum import Api
from worker.bench.stack import forget_learned
from worker.sample import MISSING_LINE_ITEM_ID, sample_rows, write_csv
from worker.simulator.scenario import generate
from worker.simulator.shapes import NAMINGS

pytestmark = pytest.mark.e2e


def test_a_mixed_job_ends_with_the_right_outcome_for_every_sku(
    stack: Stack, engine: sa.Engine, tmp_path: Path
) -> None:
    scenario = generate(seed=11, line_items=60, skus_per_line_item=120)
    stack.control.load(scenario)
    rows = sample_rows(scenario, seed=11)
    assert len(rows) >= 5000
    assert {r["action"] for r in rows} == {"set_bid", "add", "remove", "pause", "unpause"}
    expected = expect(scenario, rows)
    assert Counter(kind for _, kind in expected.outcomes.values())["validation"] >= 20

    stack.start_worker(concurrency=2)
    job_id = stack.submit(write_csv(rows, tmp_path / "night.csv"))
    status = stack.wait_for_job(job_id)

    items = item_rows(engine, job_id)
    assert_outcomes(items, expected)
    assert all(i.error_code for i in items if i.error_kind == "validation")
    assert status["status"] == "completed_with_failures"
    assert status["total"] == len(rows)
    assert status["counts"] == counts_of(items)

    # Before and after values were recorded for changed SKUs.
    initial = {
        (li.id, p.sku): p for a in scenario.accounts for li in a.line_items for p in li.products
    }
    for i in items:
        if i.status == "succeeded" and (i.line_item_id, i.sku_id) in initial:
            product = initial[(i.line_item_id, i.sku_id)]
            assert i.product_status_before == product.status
            assert dec(i.bid_before) == dec(product.bidOverride)

    assert_state(stack.control, expected)

    # Calls: at most one read, one call per action kind, and one resend per refused call.
    calls = calls_per_line_item(stack.control)
    over = {
        li: (n, expected.max_calls(li)) for li, n in calls.items() if n > expected.max_calls(li)
    }
    assert not over, f"line items over their call budget: {over}"
    assert calls[MISSING_LINE_ITEM_ID] == 1
    minimum = sum(expected.minimum(li, Api()) for li in calls)
    print(
        f"\n{len(rows)} SKUs: {sum(calls.values())} API calls over {len(calls)} line items,"
        f" minimum {minimum}"
    )


# Every way of reporting refused SKUs: each naming shape with 400s (a) and with 200s carrying
# warnings (c), each way of counting unnamed ones with 400s (b) and 200s (d).
REPORTING: list[tuple[str, dict[str, str]]] = [
    *(("a", {"naming": str(shape)}) for shape in NAMINGS),
    *(("c", {"naming": str(shape)}) for shape in NAMINGS),
    *(("b", {"anonymous_count": style}) for style in ("detail", "entries", "none")),
    *(("d", {"anonymous_count": style}) for style in ("detail", "entries", "none")),
]


@pytest.fixture(scope="module")
def shared_stack(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One worker for every reporting variant: each loads its own scenario and config."""
    with make_stack(
        database_url, redis_url, tmp_path_factory.mktemp("reporting"), env=FAST_RECOVERY
    ) as stack:
        stack.start_worker(concurrency=2)
        yield stack


@pytest.mark.parametrize(
    ("mode", "variant"),
    REPORTING,
    ids=[f"{mode}-{next(iter(v.values()))}" for mode, v in REPORTING],
)
def test_every_way_of_reporting_refusals_ends_right_near_the_fewest_calls(
    shared_stack: Stack,
    engine: sa.Engine,
    redis_url: str,
    tmp_path: Path,
    mode: str,
    variant: dict[str, str],
) -> None:
    stack = shared_stack
    seed = 300 + REPORTING.index((mode, variant))
    scenario = generate(seed, line_items=16, skus_per_line_item=40)
    stack.control.load(scenario)
    stack.control.reset(config=True)
    stack.control.configure(rate_limit_per_minute=E2E_RATE_LIMIT, validation_mode=mode, **variant)
    forget_learned(redis_url)
    forget_facts(engine)
    rows = sample_rows(scenario, seed=seed)
    expected = expect(scenario, rows)
    assert Counter(kind for _, kind in expected.outcomes.values())["validation"] >= 8

    job_id = stack.submit(write_csv(rows, tmp_path / "night.csv"))
    stack.wait_for_job(job_id)
    items = item_rows(engine, job_id)
    assert_outcomes(items, expected)
    assert all(i.error_code for i in items if i.error_kind == "validation")
    assert_state(stack.control, expected)

    calls = calls_per_line_item(stack.control)
    api = Api(mode=mode)
    minimum = sum(expected.minimum(li, api) for li in calls)
    total = sum(calls.values())
    print(f"\n{mode} {variant}: {total} calls, minimum {minimum} (x{total / minimum:.2f})")
    assert total <= 1.3 * minimum


# The unpublished limits, on larger line items: (simulator config, what it means for the
# fewest calls, line items, products per line item).
LIMITS: dict[str, tuple[dict[str, object], Api, int, int]] = {
    "ids-cap-50-page-100": (
        {"ids_cap": 50, "page_cap": 100},
        Api(mode="a", page=100, ids_cap=50),
        8,
        300,
    ),
    # Up to the 1,500 suggested since 2025-07, with room for the night's additions.
    "1500-products": ({"products_cap": 1500}, Api(mode="a"), 3, 1490),
    "all-at-once": (
        {
            "ids_cap": 50,
            "max_page_limit": 100,
            "page_meta": "none",
            "write_success": "204",
            "validation_mode": "b",
            "anonymous_count": "none",
        },
        Api(mode="b", page=100, counted=False, ids_cap=50, proves_bids=False),
        6,
        300,
    ),
}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_unpublished_limits_are_learned_and_cost_close_to_the_fewest_calls(
    shared_stack: Stack, engine: sa.Engine, redis_url: str, tmp_path: Path, name: str
) -> None:
    config, api, line_items, products = LIMITS[name]
    stack = shared_stack
    seed = 400 + sorted(LIMITS).index(name)
    scenario = generate(seed, line_items=line_items, skus_per_line_item=products)
    stack.control.load(scenario)
    stack.control.reset(config=True)
    stack.control.configure(rate_limit_per_minute=E2E_RATE_LIMIT, **config)
    forget_learned(redis_url)
    forget_facts(engine)
    rows = sample_rows(scenario, seed=seed)
    expected = expect(scenario, rows)

    job_id = stack.submit(write_csv(rows, tmp_path / "night.csv"))
    stack.wait_for_job(job_id, timeout=300)
    assert_outcomes(item_rows(engine, job_id), expected)
    assert_state(stack.control, expected)

    calls = calls_per_line_item(stack.control)
    minimum = sum(expected.minimum(li, api) for li in calls)
    total = sum(calls.values())
    log = stack.control.requests(limit=0)["by_endpoint"]
    print(f"\n{name}: {len(rows)} SKUs, {total} calls, minimum {minimum} (x{total / minimum:.2f})")
    print(f"  by endpoint and status: {log}")
    assert total <= 1.3 * minimum


# Refusals whose words say something about the SKU or the line item that outlasts the job.
LEARNABLE = {"bid-override-below-min-bid", "product-not-in-catalog", "bid-override-not-allowed"}


def test_under_anonymous_refusals_the_same_job_again_sends_no_refused_sku(
    shared_stack: Stack, engine: sa.Engine, redis_url: str, tmp_path: Path
) -> None:
    """Mode b names no SKU, so the first night finds its refused SKUs by group testing; the
    same job submitted again fails them as predicted, without a write carrying any of them."""
    stack = shared_stack
    scenario = generate(390, line_items=16, skus_per_line_item=40)
    stack.control.load(scenario)
    stack.control.reset(config=True)
    stack.control.configure(rate_limit_per_minute=E2E_RATE_LIMIT, validation_mode="b")
    forget_learned(redis_url)
    forget_facts(engine)
    night = write_csv(sample_rows(scenario, seed=390), tmp_path / "night.csv")
    first = stack.submit(night)
    stack.wait_for_job(first)
    refused = [i for i in item_rows(engine, first) if i.error_code in LEARNABLE]
    assert len(refused) >= 8
    logged = stack.control.requests(limit=0)["total"]
    writes = stack.control.write_counts()

    second = stack.submit(night)
    stack.wait_for_job(second)
    again = {(i.line_item_id, i.sku_id): i for i in item_rows(engine, second)}
    for item in refused:
        key = (item.line_item_id, item.sku_id)
        assert (again[key].status, again[key].error_kind) == ("failed", "validation")
        assert again[key].attempts == 0
        assert stack.control.write_counts()[key] == writes[key], f"{key} was sent again"
    calls = [e for e in stack.control.requests(since=logged, limit=100_000)["log"]]
    by_endpoint = Counter(e["endpoint"] for e in calls if e["endpoint"] != "token")
    print(f"\nmode b, the same job again: {len(refused)} refused SKUs predicted; {by_endpoint}")
    assert by_endpoint["get"] >= 16
