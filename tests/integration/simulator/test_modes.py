"""The four ways of reporting validation problems (a, b, c, d) and their aliases."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.simulator.api import Api, auction, item, unpromoted
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import Scenario

MODES = {
    "a": (400, "errors", True, False),
    "b": (400, "errors", False, False),
    "c": (200, "warnings", True, True),
    "d": (200, "warnings", False, True),
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_mixed_append_batch(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario, mode: str
) -> None:
    status, key, named, applied = MODES[mode]
    sim_control.configure(validation_mode=mode)
    li, catalog = auction(sim_scenario)
    good = unpromoted(li, catalog)[0]
    low_sku = li.products[0].sku
    low = float(catalog[low_sku] - Decimal("0.05"))
    answer = api.write(
        "append", li.id, [item(good), item("ghost-1"), item(low_sku, low), item("ghost-2")]
    )
    assert answer.status == status
    other = "warnings" if key == "errors" else "errors"
    assert answer.body[other] == []
    problems = answer.body[key]
    if named:
        assert [(p["code"], p["source"]) for p in problems] == [
            ("product-not-in-catalog", {"id": "data/1/id"}),
            ("bid-override-below-min-bid", {"bidOverride": "data/2/attributes/bidOverride"}),
            ("product-not-in-catalog", {"id": "data/3/id"}),
        ]
        assert "'ghost-1'" in problems[0]["detail"]
        assert f"'{low_sku}'" in problems[1]["detail"]
    else:
        assert sorted((p["code"], p["source"]) for p in problems) == [
            ("bid-override-below-min-bid", {}),
            ("product-not-in-catalog", {}),
        ]
        for p in problems:
            assert "'" not in p["detail"]
            assert "ghost" not in p["detail"]
            assert low_sku not in p["detail"]
        assert next(p for p in problems if p["code"] == "product-not-in-catalog")[
            "detail"
        ].startswith("2 ")
    products = sim_control.products(li.id)
    assert (good in products) is applied
    assert "ghost-1" not in products
    assert products[low_sku]["bidOverride"] != low


@pytest.mark.parametrize("mode", sorted(MODES))
def test_mixed_pause_batch(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario, mode: str
) -> None:
    status, key, named, applied = MODES[mode]
    sim_control.configure(validation_mode=mode)
    li, catalog = auction(sim_scenario)
    target = next(p for p in li.products if p.status == "active")
    absent = unpromoted(li, catalog)[0]
    answer = api.write("pause", li.id, [item(absent), item(target.sku)])
    assert answer.status == status  # 200 with a body, not 204, when there are warnings
    (problem,) = answer.body[key]
    assert problem["code"] == "product-not-on-line-item"
    assert problem["source"] == ({"id": "data/0/id"} if named else {})
    assert (f"'{absent}'" in problem["detail"]) is named
    assert sim_control.products(li.id)[target.sku]["status"] == ("paused" if applied else "active")


@pytest.mark.parametrize("mode", ["c", "d"])
def test_partial_delete_keeps_the_last_product(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario, mode: str
) -> None:
    sim_control.configure(validation_mode=mode)
    li, _ = auction(sim_scenario)
    answer = api.write("delete", li.id, [item(p.sku) for p in li.products])
    assert answer.status == 200
    (warning,) = answer.warnings
    assert warning["code"] == "line-item-cannot-be-empty"
    assert list(sim_control.products(li.id)) == [li.products[9].sku]


@pytest.mark.parametrize("mode", ["c", "d"])
def test_partial_append_fills_up_to_the_cap(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario, mode: str
) -> None:
    sim_control.configure(validation_mode=mode, products_cap=12)
    li, catalog = auction(sim_scenario)
    new = unpromoted(li, catalog)[:3]
    answer = api.write("append", li.id, [item(s) for s in new])
    assert answer.status == 200
    (warning,) = answer.warnings
    assert warning["code"] == "products-cap-exceeded"
    products = sim_control.products(li.id)
    assert [s in products for s in new] == [True, True, False]


@pytest.mark.parametrize(
    ("alias", "mode"),
    [
        ("reject-named", "a"),
        ("reject-anonymous", "b"),
        ("warn-named", "c"),
        ("warn-anonymous", "d"),
    ],
)
def test_descriptive_aliases(sim_control: SimulatorControl, alias: str, mode: str) -> None:
    assert sim_control.configure(validation_mode=alias)["validation_mode"] == mode


def test_default_mode_is_a(sim_control: SimulatorControl) -> None:
    assert sim_control.config()["validation_mode"] == "a"
