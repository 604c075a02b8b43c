"""The client against the real simulator over HTTP, with real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from tests.integration.criteo.conftest import MakeClient
from worker.criteo.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    Forbidden,
    LineItemNotFound,
    RateLimited,
    RequestTimeout,
    ServerError,
    TokenExpired,
    ValidationRejected,
    VersionGone,
)
from worker.criteo.limiter import RateLimiter
from worker.criteo.models import ProductState, ProductWrite
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    NOCONSENT_CLIENT_ID,
    NOCONSENT_CLIENT_SECRET,
    READONLY_CLIENT_ID,
    READONLY_CLIENT_SECRET,
    LineItemSpec,
    Scenario,
)
from worker.simulator.server import RunningSimulator


def line_items(scenario: Scenario, kind: str = "auction") -> list[LineItemSpec]:
    return [li for a in scenario.accounts for li in a.line_items if li.kind == kind]


def catalog_outside(scenario: Scenario, li: LineItemSpec) -> list[tuple[str, Decimal]]:
    account = next(a for a in scenario.accounts if li in a.line_items)
    on = {p.sku for p in li.products}
    return [(e.sku, e.minBid) for e in account.catalog if e.sku not in on]


def bad_append(scenario: Scenario) -> tuple[LineItemSpec, list[ProductWrite], set[str]]:
    """An append of a good new product, one not in the catalog and a bid below its minimum;
    and the two SKUs the API refuses."""
    li = line_items(scenario)[0]
    (good, good_min), (low, low_min) = catalog_outside(scenario, li)[:2]
    items = [
        ProductWrite(good, good_min + 1),
        ProductWrite("not-in-catalog-1", Decimal("1.00")),
        ProductWrite(low, low_min - Decimal("0.05")),
    ]
    return li, items, {"not-in-catalog-1", low}


def as_sim(products: list[ProductState]) -> dict[str, dict[str, Any]]:
    return {
        p.sku_id: {
            "bidOverride": None if p.bid_override is None else float(p.bid_override),
            "status": p.status,
        }
        for p in products
    }


async def test_get_products_reads_every_page(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    li = line_items(sim_scenario)[0]
    client = make_client(page_size=3)
    products = await client.get_products(li.id)
    assert len(products) == len(li.products) == 10
    assert as_sim(products) == sim_control.products(li.id)
    assert all(isinstance(p.bid_override, Decimal | None) for p in products)
    assert client.calls == {"token": 1, "get": 4}


async def test_the_four_writes_set_state_and_report_their_answers(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    li = line_items(sim_scenario)[0]
    client = make_client()
    (new_sku, min_bid), (plain_sku, _) = catalog_outside(sim_scenario, li)[:2]
    existing = [p.sku for p in li.products]
    bid = min_bid + Decimal("0.37")

    appended = await client.append_products(
        li.id, [ProductWrite(new_sku, bid), ProductWrite(plain_sku), ProductWrite(existing[0], bid)]
    )
    assert (appended.status, appended.warnings, appended.has_body) == (200, (), True)
    paused = await client.pause_products(li.id, existing[1:3])
    assert (paused.status, paused.has_body) == (204, False)
    await client.unpause_products(li.id, [existing[1]])
    await client.delete_products(li.id, [existing[4]])

    state = sim_control.products(li.id)
    assert state[new_sku] == {"bidOverride": float(bid), "status": "active"}
    assert state[plain_sku]["bidOverride"] is None
    assert state[existing[0]]["bidOverride"] == float(bid)
    assert state[existing[1]]["status"] == "active"
    assert state[existing[2]]["status"] == "paused"
    assert existing[4] not in state
    assert as_sim(await client.get_products(li.id)) == state
    assert client.calls == {
        "token": 1,
        "append": 1,
        "pause": 1,
        "unpause": 1,
        "delete": 1,
        "get": 1,
    }


async def test_one_token_is_shared_by_every_process(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    li = line_items(sim_scenario)[0]
    clients = [make_client() for _ in range(3)]
    for client in clients:
        await client.get_products(li.id)
    assert sim_control.requests(limit=0)["by_endpoint"]["token"] == {"200": 1}


async def test_a_token_that_dies_early_is_renewed_once_and_the_call_repeated(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    li = line_items(sim_scenario)[0]
    client = make_client()
    await client.get_products(li.id)
    sim_control.configure(faults={"get": {"p_token_expired": 0.5}})
    for _ in range(10):
        await client.get_products(li.id)
    counts = sim_control.requests(limit=0)["by_endpoint"]
    expired = counts["get"].get("401", 0)
    assert expired > 0
    assert counts["get"]["200"] == 11
    assert counts["token"] == {"200": 1 + expired}


async def test_tokens_that_keep_dying_early_are_transient(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    li = line_items(sim_scenario)[0]
    sim_control.configure(faults={"get": {"p_token_expired": 1.0}})
    client = make_client()
    with pytest.raises(TokenExpired) as caught:
        await client.get_products(li.id)
    assert caught.value.attempts == 4
    assert client.calls == {"token": 2 * 4, "get": 2 * 4}


async def test_wrong_credentials_fail_without_leaking_the_secret(
    make_client: MakeClient, sim_scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong+secret/with=chars"
    client = make_client(client_secret=secret)
    with pytest.raises(AuthenticationFailed) as caught:
        await client.get_products(line_items(sim_scenario)[0].id)
    assert caught.value.status == 401
    assert client.calls == {"token": 1}
    for text in (str(caught.value), repr(caught.value), repr(client), caplog.text):
        assert secret not in text
        assert "wrong" not in text


async def test_secrets_and_tokens_never_reach_the_logs(
    make_client: MakeClient,
    sim_scenario: Scenario,
    sim_control: SimulatorControl,
    aredis: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim_control.configure(faults={"get": {"p_503": 0.5, "p_token_expired": 0.2}})
    client = make_client()
    li = line_items(sim_scenario)[0]
    for _ in range(5):
        with contextlib.suppress(ServerError):
            await client.get_products(li.id)
    cached = await aredis.get(f"promobulk:criteo:token:{DEFAULT_CLIENT_ID}")
    token = cached.decode() if isinstance(cached, bytes) else "?"
    assert "retrying" in caplog.text
    assert DEFAULT_CLIENT_SECRET not in caplog.text
    assert token not in caplog.text


async def test_server_errors_are_retried_then_raised_when_the_budget_is_spent(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    li = line_items(sim_scenario)[0]
    client = make_client()
    sim_control.configure(faults={"pause": {"p_500": 0.3, "p_502": 0.3, "p_503": 0.3}})
    sku = li.products[0].sku
    spent: list[ServerError] = []
    for _ in range(10):
        try:
            await client.pause_products(li.id, [sku])
        except ServerError as exc:
            spent.append(exc)
    assert len(spent) < 10
    assert all(exc.exhausted for exc in spent)
    assert all(exc.attempts == 4 for exc in spent)
    assert all(exc.last_status in (500, 502, 503) for exc in spent)
    assert sim_control.write_counts()[(li.id, sku)] == client.calls["pause"]
    assert sim_control.products(li.id)[sku]["status"] == "paused"


async def test_hangs_time_out_and_resets_fail_the_connection(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    li = line_items(sim_scenario)[0]
    sim_control.configure(hang_seconds=3.0, faults={"get": {"p_hang": 1.0}})
    client = make_client(request_timeout=0.2)
    with pytest.raises(RequestTimeout) as timed_out:
        await client.get_products(li.id)
    assert timed_out.value.attempts == 4
    sim_control.configure(faults={"get": {"p_hang": 0.0, "p_reset": 1.0}})
    with pytest.raises(ConnectionFailed):
        await client.get_products(li.id)
    sim_control.configure(faults={"get": {"p_reset": 0.2, "p_hang": 0.05}})
    for _ in range(5):
        assert len(await client.get_products(li.id)) == 10


@pytest.mark.parametrize(
    ("mode", "named", "applied"),
    [("a", True, False), ("b", False, False), ("c", True, True), ("d", False, True)],
)
async def test_the_four_ways_of_reporting_validation_problems(
    make_client: MakeClient,
    sim_scenario: Scenario,
    sim_control: SimulatorControl,
    mode: str,
    named: bool,
    applied: bool,
) -> None:
    sim_control.configure(validation_mode=mode)
    li, items, bad = bad_append(sim_scenario)
    good = items[0].sku_id
    client = make_client()
    if applied:
        result = await client.append_products(li.id, items)
        problems = result.warnings
        assert result.status == 200
        assert result.has_body
    else:
        with pytest.raises(ValidationRejected) as caught:
            await client.append_products(li.id, items)
        problems = caught.value.problems
        assert caught.value.status == 400
    assert len(problems) == 2
    assert {p.code for p in problems} == {"product-not-in-catalog", "bid-below-min-bid"} or all(
        p.code for p in problems
    )
    expected_skus = bad if named else {None}
    assert {p.sku_id for p in problems} == expected_skus
    assert all(p.trace_id for p in problems)
    assert (good in sim_control.products(li.id)) is applied


async def test_403_404_and_410_are_permanent(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    li = line_items(sim_scenario)[0]
    sku = li.products[0].sku
    readonly = make_client(client_id=READONLY_CLIENT_ID, client_secret=READONLY_CLIENT_SECRET)
    assert len(await readonly.get_products(li.id)) == 10
    with pytest.raises(Forbidden) as forbidden:
        await readonly.pause_products(li.id, [sku])
    assert forbidden.value.problems[0].code == "insufficient-scope"
    noconsent = make_client(client_id=NOCONSENT_CLIENT_ID, client_secret=NOCONSENT_CLIENT_SECRET)
    with pytest.raises(Forbidden):
        await noconsent.get_products(li.id)
    client = make_client()
    with pytest.raises(LineItemNotFound):
        await client.pause_products(999, [sku])
    with pytest.raises(VersionGone):
        await make_client(version="2022-07").get_products(li.id)
    assert readonly.calls["pause"] == noconsent.calls["get"] == client.calls["pause"] == 1


_DEPRECATION_SCRIPT = """
import asyncio, logging, sys
import aiohttp, redis.asyncio as aioredis
from worker.config import Settings
from worker.criteo.client import CriteoClient

async def main():
    settings = Settings(CRITEO_API_URL=sys.argv[1], CRITEO_CLIENT_ID=sys.argv[3],
                        CRITEO_CLIENT_SECRET=sys.argv[4], CRITEO_RATE_LIMIT_PER_MINUTE=6000)
    redis = aioredis.Redis.from_url(sys.argv[2])
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            client = CriteoClient.from_settings(settings, session, redis)
            await client.get_products(int(sys.argv[5]))
            await client.get_products(int(sys.argv[5]))
    await redis.aclose()

logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
asyncio.run(main())
"""


async def test_deprecation_is_logged_once_per_process(
    simulator: RunningSimulator,
    sim_scenario: Scenario,
    sim_control: SimulatorControl,
    redis_url: str,
    clean_redis: redis.Redis,
) -> None:
    """In a process of its own (built by `from_settings`), since "once" is per process."""
    sunset = date.today() + timedelta(days=30)
    sim_control.configure(sunsets={"2026-07": sunset.isoformat()}, rate_limit_per_minute=6000)
    li = line_items(sim_scenario)[0]
    args = [simulator.url, redis_url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, str(li.id)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _DEPRECATION_SCRIPT, *args, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    log = stderr.decode()
    assert process.returncode == 0, log
    warnings = [line for line in log.splitlines() if "deprecated" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("promobulk.criteo WARNING")
    assert "Sunset=" in warnings[0]
    assert sim_control.requests(limit=0)["by_endpoint"]["get"] == {"200": 4}
    assert DEFAULT_CLIENT_SECRET not in log


async def test_a_lower_server_limit_is_respected_by_every_process_without_a_429(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    li = line_items(sim_scenario)[0]
    one, two = make_client(rate=600), make_client(rate=600)
    sim_control.configure(rate_limit_per_minute=3)
    await one.get_products(li.id)  # learns the limit of 3 a minute from the headers
    with pytest.raises(RateLimited) as caught:
        await one.get_products(li.id)
    assert (caught.value.retry_after or 0) > 5
    with pytest.raises(RateLimited):
        await two.get_products(li.id)
    assert two.calls["get"] == 0
    assert "429" not in sim_control.requests(limit=0)["by_endpoint"]["get"]


async def test_a_429_makes_every_process_back_off(
    make_client: MakeClient,
    sim_scenario: Scenario,
    sim_control: SimulatorControl,
    aredis: aioredis.Redis,
) -> None:
    li = line_items(sim_scenario)[0]
    sim_control.configure(rate_limit_per_minute=1)
    rogue = make_client(limiter=RateLimiter(aredis, "not-sharing", rate_per_minute=600))
    await rogue.get_products(li.id)
    with pytest.raises(RateLimited):
        await rogue.get_products(li.id)
    one, two = make_client(rate=600), make_client(rate=600)
    with pytest.raises(RateLimited) as caught:
        await one.get_products(li.id)
    assert caught.value.last_status == 429
    with pytest.raises(RateLimited):
        await two.get_products(li.id)
    assert (one.calls["get"], two.calls["get"]) == (1, 0)
    assert sim_control.requests(limit=0)["by_endpoint"]["get"] == {"200": 1, "429": 1}


async def test_bids_are_sent_exactly_or_not_at_all(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    li = line_items(sim_scenario)[0]
    sku = li.products[0].sku
    client = make_client()
    await client.append_products(li.id, [ProductWrite(sku, Decimal("2.10"))])
    read = {p.sku_id: p.bid_override for p in await client.get_products(li.id)}
    assert read[sku] == Decimal("2.1")
    with pytest.raises(ValueError, match="exactly"):
        await client.append_products(li.id, [ProductWrite(sku, Decimal("2.100000000000000000001"))])
    assert client.calls["append"] == 1


async def test_redis_unreachable_is_transient(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    client = make_client(
        redis=gone, limiter=RateLimiter(gone, DEFAULT_CLIENT_ID, rate_per_minute=600)
    )
    with pytest.raises(ConnectionFailed, match="Redis unavailable") as caught:
        await client.get_products(line_items(sim_scenario)[0].id)
    assert caught.value.attempts == 4
    assert sim_control.requests(limit=0)["total"] == 0
    await gone.aclose()
