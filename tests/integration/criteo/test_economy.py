"""The client against every unpublished behaviour the simulator can play: it reads a named SKU in
each shape, learns caps once for every process, and pages any server at the fewest calls."""

from __future__ import annotations

from decimal import Decimal

import pytest
import redis

from tests.integration.criteo.conftest import MakeClient
from tests.integration.criteo.test_client_simulator import (
    as_sim,
    bad_append,
    catalog_outside,
    line_items,
)
from worker.criteo.errors import RequestTooLarge, ValidationRejected
from worker.criteo.models import ProductWrite
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import Scenario, generate
from worker.simulator.shapes import NAMINGS


@pytest.mark.parametrize("shape", NAMINGS)
@pytest.mark.parametrize("mode", ["a", "c"])
async def test_a_named_sku_is_read_in_every_shape(
    make_client: MakeClient,
    sim_scenario: Scenario,
    sim_control: SimulatorControl,
    shape: str,
    mode: str,
) -> None:
    sim_control.configure(validation_mode=mode, naming=shape)
    li, items, bad = bad_append(sim_scenario)
    client = make_client()
    if mode == "a":
        with pytest.raises(ValidationRejected) as caught:
            await client.append_products(li.id, items)
        problems = caught.value.problems
    else:
        problems = (await client.append_products(li.id, items)).warnings
    assert {p.sku_id for p in problems} == bad


@pytest.mark.parametrize(("style", "exact"), [("detail", True), ("entries", True), ("none", False)])
async def test_anonymous_refusals_are_counted_in_each_style(
    make_client: MakeClient,
    sim_scenario: Scenario,
    sim_control: SimulatorControl,
    style: str,
    exact: bool,
) -> None:
    sim_control.configure(validation_mode="b", anonymous_count=style)
    li = line_items(sim_scenario)[0]
    catalog = catalog_outside(sim_scenario, li)
    items = [ProductWrite(f"ghost-{n}", None) for n in range(2)] + [
        ProductWrite(sku, min_bid - Decimal("0.05")) for sku, min_bid in catalog[:1]
    ]
    client = make_client()
    with pytest.raises(ValidationRejected) as caught:
        await client.append_products(li.id, items)
    tally = caught.value.tally()
    assert tally.exact is exact
    expected = {"product-not-in-catalog": 2, "bid-override-below-min-bid": 1}
    assert tally.counts == (expected if exact else dict.fromkeys(expected, 1))
    # Once an API was seen giving one problem per item, its anonymous problems count exactly.
    other = make_client()
    with pytest.raises(ValidationRejected) as again:
        await other.append_products(li.id, items[1:])
    assert again.value.tally().exact is exact


async def test_an_ids_cap_is_learned_once_for_every_process(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    sim_control.configure(ids_cap=4)
    li = line_items(sim_scenario)[0]
    skus = [p.sku for p in li.products]
    one, two = make_client(), make_client()
    assert (await one.write_limits("pause")).max_ids is None
    with pytest.raises(RequestTooLarge) as caught:
        await one.pause_products(li.id, skus)
    assert caught.value.ids_cap == 4
    assert caught.value.limits is not None
    assert caught.value.limits.max_ids == 4
    limits = await two.write_limits("pause")
    assert limits.max_ids == 4
    assert (await two.write_limits("append")).max_ids is None  # per endpoint
    for part in limits.split(skus, len):
        await two.pause_products(li.id, part)
    assert sim_control.requests(limit=0)["by_endpoint"]["pause"] == {"400": 1, "204": 3}


async def test_a_413_is_learned_and_narrowed_down_from_both_sides(
    make_client: MakeClient, sim_scenario: Scenario, sim_control: SimulatorControl
) -> None:
    li = line_items(sim_scenario)[0]
    skus = [p.sku for p in li.products]
    sim_control.configure(max_body_bytes=400)
    client = make_client()
    await client.write_limits("pause")
    with pytest.raises(RequestTooLarge) as caught:
        await client.pause_products(li.id, skus)
    first = caught.value.limits
    assert first is not None
    assert first.max_bytes is not None
    refused = caught.value.body_bytes
    assert refused is not None
    assert refused > 400
    assert first.max_bytes == refused // 2
    for part in first.split(skus, lambda s: len(s) + 50):
        await client.pause_products(li.id, part)
    later = await client.write_limits("pause")
    assert later.max_bytes is not None
    assert first.max_bytes < later.max_bytes < refused


SERVERS = [
    # (config, GETs for a line item of 300 products read twice, the second time knowing more)
    ({}, [1, 1]),
    ({"page_cap": 100}, [3, 3]),
    ({"page_cap": 100, "page_meta": "asked-limit"}, [3, 3]),
    ({"page_cap": 100, "page_meta": "no-count"}, [4, 4]),
    ({"page_cap": 100, "page_meta": "none"}, [4, 4]),
    # No count: a short page is the last only below the largest page seen; both have 300.
    ({"page_meta": "no-count"}, [2, 2]),
    ({"page_meta": "none"}, [2, 2]),
    ({"max_page_limit": 1000}, [2, 1]),
    ({"max_page_limit": 120}, [4, 3]),
]


@pytest.mark.parametrize(("config", "gets"), SERVERS)
async def test_any_server_is_paged_to_its_end_at_the_fewest_calls(
    make_client: MakeClient,
    sim_control: SimulatorControl,
    config: dict[str, object],
    gets: list[int],
) -> None:
    scenario = generate(3, line_items=4, skus_per_line_item=300, catalog_extra=10)
    sim_control.load(scenario)
    sim_control.configure(products_cap=1500, **config)
    first, second = line_items(scenario)[:2]
    client = make_client()
    for li, expected in zip((first, second), gets, strict=True):
        before = client.calls["get"]
        products = await client.get_products(li.id)
        assert as_sim(products) == sim_control.products(li.id)
        assert client.calls["get"] - before == expected, (li.id, config)


async def test_a_page_of_a_larger_line_item_still_pages_on(
    make_client: MakeClient, sim_control: SimulatorControl
) -> None:
    """No `meta` at all: a page as large as any seen before may not be the last."""
    scenario = generate(4, line_items=2, skus_per_line_item=300, catalog_extra=10)
    sim_control.load(scenario)
    sim_control.configure(page_meta="none", page_cap=300)
    client = make_client()
    li = line_items(scenario)[0]
    assert len(await client.get_products(li.id)) == 300
    extra = catalog_outside(scenario, li)[0]
    await client.append_products(li.id, [ProductWrite(extra[0], None)])
    assert len(await client.get_products(li.id)) == 301


async def test_a_read_back_stops_at_the_page_it_needs(
    make_client: MakeClient, sim_control: SimulatorControl
) -> None:
    scenario = generate(6, line_items=2, skus_per_line_item=300, catalog_extra=10)
    sim_control.load(scenario)
    sim_control.configure(page_cap=100)
    li = line_items(scenario)[0]
    client = make_client()
    wanted = {li.products[5].sku, li.products[150].sku}
    products = await client.get_products(li.id, until=wanted)
    assert wanted <= {p.sku_id for p in products}
    assert client.calls["get"] == 2


async def test_limits_are_kept_per_api_version(
    make_client: MakeClient,
    sim_scenario: Scenario,
    sim_control: SimulatorControl,
    redis_url: str,
) -> None:
    sim_control.configure(ids_cap=2)
    li = line_items(sim_scenario)[0]
    with pytest.raises(RequestTooLarge):
        await make_client().pause_products(li.id, [p.sku for p in li.products[:3]])
    assert (await make_client(version="2027-01").write_limits("pause")).max_ids is None
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = sorted(store.keys("promobulk:criteo:learned:*"))
    assert keys == ["promobulk:criteo:learned:promobulk-demo:2026-07:ids:pause"]
    ttl = store.pttl(keys[0])
    store.close()
    assert 23 * 3600 * 1000 < ttl <= 24 * 3600 * 1000
