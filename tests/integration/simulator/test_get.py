"""GET products: paging, fields, meta, versions, 404 and 403."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.integration.simulator.api import Api, auction
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import (
    NOCONSENT_CLIENT_ID,
    NOCONSENT_CLIENT_SECRET,
    READONLY_CLIENT_ID,
    READONLY_CLIENT_SECRET,
    Scenario,
)


def test_default_fields_are_status_only(api: Api, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    answer = api.get(li.id)
    assert answer.status == 200
    assert answer.body["meta"] == {"count": 10, "limit": 500, "offset": 0, "responseCount": 10}
    assert answer.body["warnings"] == []
    assert answer.body["errors"] == []
    first = answer.body["data"][0]
    assert first == {
        "id": li.products[0].sku,
        "type": "RetailMediaPromotedProduct",
        "attributes": {"id": li.products[0].sku, "status": li.products[0].status},
    }


def test_bid_override_only_when_asked_for(api: Api, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    answer = api.get(li.id, "fields=status,bidOverride")
    got = {d["id"]: d["attributes"] for d in answer.body["data"]}
    for product in li.products:
        expected = None if product.bidOverride is None else float(product.bidOverride)
        assert got[product.sku] == {
            "id": product.sku,
            "status": product.status,
            "bidOverride": expected,
        }
    assert any(a["bidOverride"] is not None for a in got.values())
    assert any(a["bidOverride"] is None for a in got.values())


def test_paging_with_offset_and_limit(api: Api, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    pages = [api.get(li.id, f"offset={offset}&limit=4").body for offset in (0, 4, 8, 12)]
    assert [p["meta"]["responseCount"] for p in pages] == [4, 4, 2, 0]
    assert all(p["meta"]["count"] == 10 for p in pages)
    assert pages[1]["meta"] == {"count": 10, "limit": 4, "offset": 4, "responseCount": 4}
    skus = [d["id"] for p in pages for d in p["data"]]
    assert skus == [p.sku for p in li.products]


@pytest.mark.parametrize("query", ["limit=0", "offset=-1", "limit=abc", "fields=status,price"])
def test_bad_paging_or_fields_is_400(api: Api, sim_scenario: Scenario, query: str) -> None:
    li, _ = auction(sim_scenario)
    answer = api.get(li.id, query)
    assert answer.status == 400
    assert answer.errors[0]["type"] == "validation"
    assert answer.errors[0]["code"] in {"invalid-paging", "invalid-fields"}


def test_unknown_line_item_is_404(api: Api) -> None:
    answer = api.get(999)
    assert answer.status == 404
    assert answer.errors[0]["code"] == "line-item-not-found"


def test_account_without_consent_is_403(api: Api, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    api.get_token(NOCONSENT_CLIENT_ID, NOCONSENT_CLIENT_SECRET)
    answer = api.get(li.id)
    assert answer.status == 403
    assert answer.errors[0]["code"] == "account-not-authorized"
    assert answer.errors[0]["type"] == "access-control"


def test_read_only_client_may_read(api: Api, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    api.get_token(READONLY_CLIENT_ID, READONLY_CLIENT_SECRET)
    assert api.get(li.id).status == 200


@pytest.mark.parametrize("version", ["2026-01", "2026-07", "2027-01"])
def test_live_versions_answer(api: Api, sim_scenario: Scenario, version: str) -> None:
    li, _ = auction(sim_scenario)
    assert api.get(li.id, version=version).status == 200


@pytest.mark.parametrize("version", ["2022-07", "2023-10", "2025-10"])
def test_dead_versions_are_410(api: Api, sim_scenario: Scenario, version: str) -> None:
    li, _ = auction(sim_scenario)
    answer = api.get(li.id, version=version)
    assert answer.status == 410
    assert answer.errors[0]["type"] == "deprecation"
    assert answer.errors[0]["code"] == "version-gone"


@pytest.mark.parametrize("version", ["2021-01", "2026-04", "v1", "2099-01"])
def test_unknown_versions_are_404(api: Api, sim_scenario: Scenario, version: str) -> None:
    li, _ = auction(sim_scenario)
    answer = api.get(li.id, version=version)
    assert answer.status == 404
    assert answer.errors[0]["code"] == "version-not-found"


def test_live_versions_are_configurable(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    sim_control.configure(live_versions=["2026-07"], dead_versions=["2026-01"])
    assert api.get(li.id, version="2026-01").status == 410
    assert api.get(li.id, version="2027-01").status == 404
    assert api.get(li.id, version="2026-07").status == 200


def test_deprecation_and_sunset_headers_only_in_the_last_three_months(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    soon = date.today() + timedelta(days=30)
    later = date.today() + timedelta(days=200)
    sim_control.configure(sunsets={"2026-07": soon.isoformat(), "2027-01": later.isoformat()})
    dying = api.get(li.id, version="2026-07")
    assert dying.status == 200
    assert dying.headers["deprecation"] == "true"
    assert dying.headers["sunset"] == soon.strftime("%a, %d %b %Y 00:00:00 GMT")
    healthy = api.get(li.id, version="2027-01")
    assert "deprecation" not in healthy.headers
    assert "sunset" not in healthy.headers
