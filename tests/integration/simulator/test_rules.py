"""Every rule of the four write endpoints, in the default mode (a): status, body, state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.integration.simulator.api import Api, auction, item, preferred, unpromoted
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import (
    NOCONSENT_CLIENT_ID,
    NOCONSENT_CLIENT_SECRET,
    READONLY_CLIENT_ID,
    READONLY_CLIENT_SECRET,
    Scenario,
)

PROBLEM_KEYS = {"traceId", "type", "code", "instance", "title", "detail", "source", "status"}


def _only_problem(body: dict[str, Any]) -> dict[str, Any]:
    assert body["warnings"] == []
    (problem,) = body["errors"]
    assert isinstance(problem, dict)
    assert set(problem) == PROBLEM_KEYS
    assert problem["type"] == "validation"
    assert problem["status"] == 400
    return problem


def test_append_adds_new_products_active_with_their_bids(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, catalog = auction(sim_scenario)
    new_a, new_b = unpromoted(li, catalog)[:2]
    bid = float(catalog[new_a] + Decimal("0.05"))
    answer = api.write("append", li.id, [item(new_a, bid), item(new_b)])
    assert answer.status == 200
    assert answer.body == {"warnings": [], "errors": []}
    products = sim_control.products(li.id)
    assert products[new_a] == {"bidOverride": bid, "status": "active"}
    assert products[new_b] == {"bidOverride": None, "status": "active"}
    assert len(products) == 12


def test_append_on_an_existing_product_updates_only_its_bid(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, catalog = auction(sim_scenario)
    paused = next(p for p in li.products if p.status == "paused")
    bid = float(catalog[paused.sku] + Decimal("1.00"))
    assert api.write("append", li.id, [item(paused.sku, bid)]).status == 200
    assert sim_control.products(li.id)[paused.sku] == {"bidOverride": bid, "status": "paused"}


def test_append_with_null_bid_clears_and_without_bid_keeps(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    with_bids = [p for p in li.products if p.bidOverride is not None]
    cleared, kept = with_bids[0], with_bids[1]
    answer = api.write("append", li.id, [item(cleared.sku, bidOverride=None), item(kept.sku)])
    assert answer.status == 200
    products = sim_control.products(li.id)
    assert products[cleared.sku]["bidOverride"] is None
    assert products[kept.sku]["bidOverride"] == float(kept.bidOverride or 0)


def test_numeric_string_bids_and_any_type_are_accepted(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, catalog = auction(sim_scenario)
    sku = unpromoted(li, catalog)[0]
    body = [{"id": sku, "type": "RetailMediaProductAppend", "attributes": {"bidOverride": "0.50"}}]
    assert api.write("append", li.id, body).status == 200
    assert sim_control.products(li.id)[sku]["bidOverride"] == 0.5


def test_sku_not_in_catalog(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, catalog = auction(sim_scenario)
    fine = unpromoted(li, catalog)[0]
    before = sim_control.state()
    answer = api.write("append", li.id, [item(fine), item("ghost-1")])
    assert answer.status == 400
    problem = _only_problem(answer.body)
    assert problem["code"] == "product-not-in-catalog"
    assert problem["source"] == {"id": "data/1/id"}
    assert "'ghost-1'" in problem["detail"]
    assert sim_control.state() == before  # nothing applied, not even the valid item


def test_bid_below_min_bid(api: Api, sim_control: SimulatorControl, sim_scenario: Scenario) -> None:
    li, catalog = auction(sim_scenario)
    sku = li.products[0].sku
    low = float(catalog[sku] - Decimal("0.01"))
    answer = api.write("append", li.id, [item(sku, low)])
    assert answer.status == 400
    problem = _only_problem(answer.body)
    assert problem["code"] == "bid-override-below-min-bid"
    assert problem["source"] == {"bidOverride": "data/0/attributes/bidOverride"}
    assert f"'{sku}'" in problem["detail"]
    expected = None if li.products[0].bidOverride is None else float(li.products[0].bidOverride)
    assert sim_control.products(li.id)[sku]["bidOverride"] == expected


def test_bid_equal_to_min_bid_is_accepted(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, catalog = auction(sim_scenario)
    sku = li.products[0].sku
    assert api.write("append", li.id, [item(sku, float(catalog[sku]))]).status == 200
    assert sim_control.products(li.id)[sku]["bidOverride"] == float(catalog[sku])


def test_bid_on_a_preferred_deals_line_item(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, catalog = preferred(sim_scenario)
    new = unpromoted(li, catalog)[0]
    answer = api.write("append", li.id, [item(new, 5.0)])
    assert answer.status == 400
    problem = _only_problem(answer.body)
    assert problem["code"] == "bid-override-not-allowed"
    assert problem["source"] == {"bidOverride": "data/0/attributes/bidOverride"}
    assert f"'{new}'" in problem["detail"]
    assert new not in sim_control.products(li.id)
    assert api.write("append", li.id, [item(new)]).status == 200  # without a bid it is fine
    assert sim_control.products(li.id)[new] == {"bidOverride": None, "status": "active"}


def test_products_cap(api: Api, sim_control: SimulatorControl, sim_scenario: Scenario) -> None:
    li, catalog = auction(sim_scenario)
    sim_control.configure(products_cap=11)
    first, second = unpromoted(li, catalog)[:2]
    answer = api.write("append", li.id, [item(first), item(second)])
    assert answer.status == 400
    problem = _only_problem(answer.body)
    assert problem["code"] == "products-cap-exceeded"
    assert problem["source"] == {"id": "data/1/id"}
    assert f"'{second}'" in problem["detail"]
    assert len(sim_control.products(li.id)) == 10
    assert api.write("append", li.id, [item(first)]).status == 200
    assert len(sim_control.products(li.id)) == 11


def test_default_cap_is_500(sim_control: SimulatorControl) -> None:
    assert sim_control.config()["products_cap"] == 500


def test_delete_removes_products(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    gone = [p.sku for p in li.products[:3]]
    answer = api.write("delete", li.id, [item(s) for s in [*gone, "never-there"]])
    assert answer.status == 204
    assert answer.body is None
    products = sim_control.products(li.id)
    assert len(products) == 7
    assert not set(gone) & set(products)


def test_delete_that_would_empty_the_line_item(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    answer = api.write("delete", li.id, [item(p.sku) for p in li.products])
    assert answer.status == 400
    problem = _only_problem(answer.body)
    assert problem["code"] == "line-item-cannot-be-empty"
    assert problem["source"] == {"id": "data/9/id"}
    assert f"'{li.products[9].sku}'" in problem["detail"]
    assert len(sim_control.products(li.id)) == 10


def test_delete_attributes_are_ignored(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    sku = li.products[0].sku
    assert api.write("delete", li.id, [item(sku, 0.3)]).status == 204  # as in the seed's sample
    assert sku not in sim_control.products(li.id)


@pytest.mark.parametrize(("action", "start"), [("pause", "active"), ("unpause", "paused")])
def test_pause_and_unpause_set_status(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario, action: str, start: str
) -> None:
    li, _ = auction(sim_scenario)
    target = next(p for p in li.products if p.status == start)
    answer = api.write(action, li.id, [item(target.sku)])
    assert answer.status == 204
    after = sim_control.products(li.id)[target.sku]
    assert after["status"] == ("paused" if action == "pause" else "active")
    assert answer.status == api.write(action, li.id, [item(target.sku)]).status  # idempotent


@pytest.mark.parametrize("action", ["pause", "unpause"])
@pytest.mark.parametrize("attribute", [{"bidOverride": 1.0}, {"status": "paused"}])
def test_bid_or_status_attribute_on_pause_unpause(
    api: Api,
    sim_control: SimulatorControl,
    sim_scenario: Scenario,
    action: str,
    attribute: dict[str, Any],
) -> None:
    li, _ = auction(sim_scenario)
    before = sim_control.products(li.id)
    sku = li.products[0].sku
    answer = api.write(action, li.id, [item(li.products[1].sku), item(sku, **attribute)])
    assert answer.status == 400
    problem = _only_problem(answer.body)
    assert problem["code"] == "invalid-attributes"
    (name,) = attribute
    assert problem["source"] == {name: f"data/1/attributes/{name}"}
    assert f"'{sku}'" in problem["detail"]
    assert sim_control.products(li.id) == before


def test_pause_of_a_product_not_on_the_line_item(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, catalog = auction(sim_scenario)
    absent = unpromoted(li, catalog)[0]
    answer = api.write("pause", li.id, [item(absent)])
    assert answer.status == 400
    problem = _only_problem(answer.body)
    assert problem["code"] == "product-not-on-line-item"
    assert problem["source"] == {"id": "data/0/id"}
    assert absent not in sim_control.products(li.id)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"type": "x"}, "id"),
        ({"id": "", "type": "x"}, "id"),
        ({"id": "sku", "attributes": [1]}, "id"),
        (None, "id"),
    ],
)
def test_malformed_items_are_invalid_attributes(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario, bad: Any, field: str
) -> None:
    li, _ = auction(sim_scenario)
    before = sim_control.products(li.id)
    answer = api.write("append", li.id, [bad])
    assert answer.status == 400
    problem = _only_problem(answer.body)
    assert problem["code"] == "invalid-attributes"
    assert problem["source"] == {field: f"data/0/{field}"}
    assert sim_control.products(li.id) == before


@pytest.mark.parametrize(
    ("attributes", "field"),
    [({"bidOverride": "cheap"}, "bidOverride"), ({"status": "paused"}, "status")],
)
def test_bad_append_attributes_are_invalid_attributes(
    api: Api, sim_scenario: Scenario, attributes: dict[str, Any], field: str
) -> None:
    li, _ = auction(sim_scenario)
    sku = li.products[0].sku
    answer = api.write("append", li.id, [{"id": sku, "type": "x", "attributes": attributes}])
    assert answer.status == 400
    problem = _only_problem(answer.body)
    assert problem["code"] == "invalid-attributes"
    assert problem["source"] == {field: f"data/0/attributes/{field}"}
    assert f"'{sku}'" in problem["detail"]


def test_body_without_a_data_array_is_400(api: Api, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    path = f"/2026-07/retail-media/line-items/{li.id}/products/append"
    api.get_token()
    for raw in (b"not json", b'{"data": {}}', b"[]"):
        answer = api.request(
            "POST", path, raw=raw, headers={"Authorization": f"Bearer {api.token}"}
        )
        assert answer.status == 400
        assert answer.errors[0]["code"] == "invalid-request-body"


@pytest.mark.parametrize("action", ["append", "delete", "pause", "unpause"])
def test_read_only_client_cannot_write(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario, action: str
) -> None:
    li, _ = auction(sim_scenario)
    before = sim_control.products(li.id)
    api.get_token(READONLY_CLIENT_ID, READONLY_CLIENT_SECRET)
    answer = api.write(action, li.id, [item(li.products[0].sku)])
    assert answer.status == 403
    assert answer.errors[0]["code"] == "insufficient-scope"
    assert answer.errors[0]["type"] == "authorization"
    assert sim_control.products(li.id) == before


def test_write_without_consent_is_403(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    before = sim_control.products(li.id)
    api.get_token(NOCONSENT_CLIENT_ID, NOCONSENT_CLIENT_SECRET)
    answer = api.write("pause", li.id, [item(li.products[0].sku)])
    assert answer.status == 403
    assert answer.errors[0]["code"] == "account-not-authorized"
    assert sim_control.products(li.id) == before


def test_write_to_an_unknown_line_item_is_404(api: Api, sim_control: SimulatorControl) -> None:
    before = sim_control.state()
    answer = api.write("append", 42, [item("sku-0-000001")])
    assert answer.status == 404
    assert answer.errors[0]["code"] == "line-item-not-found"
    assert sim_control.state() == before


def test_unknown_action_is_a_plain_404(api: Api, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    assert api.write("archive", li.id, []).status == 404


@pytest.mark.parametrize(("setting", "status"), [("200", 200), ("204", 204)])
@pytest.mark.parametrize("action", ["append", "delete", "pause"])
def test_write_success_answer_is_configurable(
    api: Api,
    sim_control: SimulatorControl,
    sim_scenario: Scenario,
    setting: str,
    status: int,
    action: str,
) -> None:
    sim_control.configure(write_success=setting)
    li, _ = auction(sim_scenario)
    sku = li.products[0].sku
    answer = api.write(action, li.id, [item(sku)])
    assert answer.status == status
    assert answer.body == ({"warnings": [], "errors": []} if status == 200 else None)
    products = sim_control.products(li.id)
    if action == "delete":
        assert sku not in products
    elif action == "pause":
        assert products[sku]["status"] == "paused"
    else:
        assert sku in products


def test_a_bid_of_zero_clears_the_override_whatever_the_minimum(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    """The promoted-products guide of v2025.10: "The value 0.0 will remove a bidOverride"."""
    li, _ = auction(sim_scenario)
    cleared = next(p for p in li.products if p.bidOverride is not None)
    assert api.write("append", li.id, [item(cleared.sku, 0.0)]).status == 200
    assert sim_control.products(li.id)[cleared.sku]["bidOverride"] is None
    deals, _ = preferred(sim_scenario)
    on_deals = deals.products[0].sku
    assert api.write("append", deals.id, [item(on_deals, 0.0)]).status == 200
    assert sim_control.products(deals.id)[on_deals]["bidOverride"] is None
