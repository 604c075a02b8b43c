"""The behaviours Criteo does not document, each off by default and switched on through
`POST /_sim/config`: naming shapes, anonymous counts, an ids cap, page caps and meta, a largest
`limit`, a largest body."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.integration.simulator.api import Api, auction, item, unpromoted
from worker.simulator.config import SimConfig
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import Scenario, generate
from worker.simulator.shapes import NAMINGS


def test_every_variant_is_off_by_default(sim_control: SimulatorControl) -> None:
    config = sim_control.config()
    assert config["naming"] == "path+quote"
    assert config["anonymous_count"] == "detail"
    assert config["page_meta"] == "full"
    for key in ("ids_cap", "page_cap", "max_page_limit", "max_body_bytes"):
        assert config[key] is None, key
    assert SimConfig().model_dump(mode="json") == config


def _refused_append(
    api: Api, scenario: Scenario
) -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]]]:
    """An append of [good, not in catalog, below min bid]: its body, SKUs and problems."""
    li, catalog = auction(scenario)
    good = unpromoted(li, catalog)[0]
    low = li.products[0].sku
    body = [item(good), item("ghost-1"), item(low, float(catalog[low] - Decimal("0.05")))]
    answer = api.write("append", li.id, body)
    assert answer.status == 400
    return body, [good, "ghost-1", low], answer.errors


EXPECTED_CLUES: dict[str, tuple[dict[str, str], str]] = {
    # shape: (source of the problem on item 2 (a bid below its minimum), what names the SKU)
    "path+quote": ({"bidOverride": "data/2/attributes/bidOverride"}, "detail-quoted"),
    "path": ({"bidOverride": "data/2/attributes/bidOverride"}, ""),
    "pointer": ({"bidOverride": "/data/2/attributes/bidOverride"}, ""),
    "brackets": ({"bidOverride": "data[2].attributes.bidOverride"}, ""),
    "dots": ({"bidOverride": "data.2"}, ""),
    "path-key": ({"data[2]": "bidOverride"}, ""),
    "sku-value": ({"bidOverride": "<sku>"}, ""),
    "sku-key": ({"<sku>": "bidOverride"}, ""),
    "quoted": ({}, "detail-quoted"),
    "double-quoted": ({}, "detail-double-quoted"),
    "bare": ({}, "detail-bare"),
    "title": ({}, "title"),
    "field": ({}, "productId"),
}


@pytest.mark.parametrize("shape", NAMINGS)
def test_each_naming_shape_gives_one_clue(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario, shape: str
) -> None:
    sim_control.configure(naming=shape)
    _, skus, problems = _refused_append(api, sim_scenario)
    assert [p["code"] for p in problems] == ["product-not-in-catalog", "bid-override-below-min-bid"]
    low = skus[2]
    problem = problems[1]
    source, where = EXPECTED_CLUES[shape]
    assert problem["source"] == {
        k.replace("<sku>", low): v.replace("<sku>", low) for k, v in source.items()
    }
    assert problem["title"].endswith(f": {low}") is (where == "title")
    assert (problem.get("productId") == low) is (where == "productId")
    detail = problem["detail"]
    assert (f"'{low}'" in detail) is (where == "detail-quoted")
    assert (f'"{low}"' in detail) is (where == "detail-double-quoted")
    assert (f"SKU {low} " in detail) is (where == "detail-bare")
    if not where.startswith("detail"):
        assert low not in detail


CATALOG, LOW = "product-not-in-catalog", "bid-override-below-min-bid"


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        (
            "detail",
            [
                (CATALOG, "2 products are not in the account catalog"),
                (LOW, "2 bid overrides are below the min bid"),
            ],
        ),
        (
            "entries",
            [
                (CATALOG, "The product is not in the account catalog"),
                (CATALOG, "The product is not in the account catalog"),
                (LOW, "The bid override is below the min bid"),
                (LOW, "The bid override is below the min bid"),
            ],
        ),
        (
            "none",
            [
                (CATALOG, "Products are not in the account catalog"),
                (LOW, "Bid overrides are below the min bid"),
            ],
        ),
    ],
)
def test_anonymous_problems_count_in_each_style(
    api: Api,
    sim_control: SimulatorControl,
    sim_scenario: Scenario,
    style: str,
    expected: list[tuple[str, str]],
) -> None:
    sim_control.configure(validation_mode="b", anonymous_count=style)
    li, catalog = auction(sim_scenario)
    low = [p.sku for p in li.products[:2]]
    body = [item("ghost-1"), item("ghost-2")] + [
        item(sku, float(catalog[sku] - Decimal("0.05"))) for sku in low
    ]
    problems = api.write("append", li.id, body).errors
    assert [(p["code"], p["detail"]) for p in problems] == expected
    assert all(p["source"] == {} for p in problems)


def test_the_ids_cap_answers_the_documented_problem_and_applies_nothing(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    sim_control.configure(ids_cap=3, validation_mode="c")
    li, _ = auction(sim_scenario)
    skus = [p.sku for p in li.products if p.status == "active"][:4]
    refused = api.write("pause", li.id, [item(s) for s in skus])
    assert refused.status == 400
    (problem,) = refused.errors
    assert {k: problem[k] for k in ("code", "type", "title", "source", "status")} == {
        "code": "exceeded-ids-cap",
        "type": "validation",
        "title": "Requests are capped for 3 unique ids, 4 were provided",
        "source": {"ids": "data/attributes/ids"},
        "status": 400,
    }
    assert all(sim_control.products(li.id)[s]["status"] == "active" for s in skus)
    # Unique ids count: the same SKU twice is one id.
    assert api.write("pause", li.id, [item(s) for s in skus[:3] + skus[:1]]).status == 204


def test_a_body_above_the_largest_answers_413(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    skus = [p.sku for p in li.products][:5]
    sim_control.configure(max_body_bytes=200)
    answer = api.write("pause", li.id, [item(s) for s in skus])
    assert answer.status == 413
    assert answer.errors[0]["code"] == "request-entity-too-large"
    assert api.write("pause", li.id, [item(skus[0])]).status == 204
    assert sim_control.requests(limit=0)["by_endpoint"]["pause"] == {"413": 1, "204": 1}


@pytest.mark.parametrize(
    ("page_meta", "meta"),
    [
        ("full", {"count": 10, "limit": 4, "offset": 0, "responseCount": 4}),
        ("asked-limit", {"count": 10, "limit": 100, "offset": 0, "responseCount": 4}),
        ("no-count", {"limit": 4, "offset": 0, "responseCount": 4}),
        ("none", None),
    ],
)
def test_a_page_cap_answers_fewer_than_asked_with_each_meta(
    api: Api,
    sim_control: SimulatorControl,
    sim_scenario: Scenario,
    page_meta: str,
    meta: dict[str, int] | None,
) -> None:
    sim_control.configure(page_cap=4, page_meta=page_meta)
    li, _ = auction(sim_scenario)
    first = api.get(li.id, "limit=100").body
    assert len(first["data"]) == 4
    assert first.get("meta") == meta
    assert len(api.get(li.id, "offset=8&limit=100").body["data"]) == 2
    assert len(api.get(li.id, "limit=3").body["data"]) == 3


def test_a_limit_above_the_largest_answers_400(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    sim_control.configure(max_page_limit=5)
    li, _ = auction(sim_scenario)
    refused = api.get(li.id, "limit=6")
    assert refused.status == 400
    assert refused.errors[0]["code"] == "invalid-paging"
    assert refused.errors[0]["detail"] == "limit must be at most 5"
    assert len(api.get(li.id, "limit=5").body["data"]) == 5


def test_line_items_of_1500_products(api: Api, sim_control: SimulatorControl) -> None:
    scenario = generate(5, line_items=2, skus_per_line_item=1500, catalog_extra=10)
    sim_control.load(scenario)
    sim_control.configure(products_cap=1500)
    li, catalog = auction(scenario)
    assert len(api.get(li.id, "limit=2000").body["data"]) == 1500
    extra = unpromoted(li, catalog)[0]
    refused = api.write("append", li.id, [item(extra)])
    assert refused.status == 400
    assert refused.errors[0]["code"] == "products-cap-exceeded"
