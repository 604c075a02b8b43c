"""The `/_sim/` surface: state, request log, write counts, reset, scenario loading, config."""

from __future__ import annotations

import urllib.error

import pytest

from tests.integration.simulator.api import Api, auction, item, unpromoted
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import Scenario, generate


def test_state_is_the_scenario(sim_control: SimulatorControl, sim_scenario: Scenario) -> None:
    assert Scenario.model_validate(sim_control.state()) == sim_scenario


def test_state_of_one_line_item(sim_control: SimulatorControl, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario, 1)
    (account,) = sim_control.state(li.id)["accounts"]
    assert [x["id"] for x in account["line_items"]] == [li.id]
    assert sim_control.products(999) == {}


def test_log_counts_per_endpoint_and_status(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    api.get_token()
    api.get(li.id)
    api.get(999)
    api.write("pause", li.id, [item(li.products[0].sku)])
    log = sim_control.requests()
    assert log["total"] == 4
    assert log["by_endpoint"] == {
        "token": {"200": 1},
        "get": {"200": 1, "404": 1},
        "pause": {"204": 1},
    }
    assert log["by_status"] == {"200": 2, "404": 1, "204": 1}
    assert [e["seq"] for e in log["log"]] == [1, 2, 3, 4]
    assert all(e["t"] > 0 for e in log["log"])
    assert log["log"][3]["items"] == 1


def test_log_since_and_limit(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    for _ in range(5):
        api.get(li.id)
    page = sim_control.requests(since=2, limit=2)
    assert page["total"] == 6
    assert [e["seq"] for e in page["log"]] == [3, 4]
    assert sim_control.requests(since=6)["log"] == []
    assert "write_counts" not in sim_control.requests(write_counts=False)


def test_write_counts_count_every_write_whatever_its_answer(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, catalog = auction(sim_scenario)
    new = unpromoted(li, catalog)[0]
    api.write("append", li.id, [item(new)])
    api.write("append", li.id, [item(new), item("ghost")])  # rejected: still counted
    api.get(li.id)
    api.token = "bad"
    api.write("delete", li.id, [item(new)])  # 401: still counted
    counts = sim_control.write_counts()
    assert counts == {(li.id, new): 3, (li.id, "ghost"): 1}


def test_reset_restores_state_and_clears_log(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    api.write("delete", li.id, [item(li.products[0].sku)])
    sim_control.configure(validation_mode="d")
    sim_control.reset()
    assert Scenario.model_validate(sim_control.state()) == sim_scenario
    assert sim_control.requests()["total"] == 0
    assert sim_control.write_counts() == {}
    assert sim_control.config()["validation_mode"] == "d"  # config kept unless asked
    sim_control.reset(config=True)
    assert sim_control.config()["validation_mode"] == "a"


def test_load_a_scenario(api: Api, sim_control: SimulatorControl) -> None:
    other = generate(99, line_items=2, skus_per_line_item=3, catalog_extra=1, accounts=1)
    sim_control.load(other)
    assert Scenario.model_validate(sim_control.state()) == other
    li = other.accounts[0].line_items[0]
    assert api.get(li.id).body["meta"]["count"] == 3
    api.write("delete", li.id, [item(li.products[0].sku)])
    sim_control.reset()  # back to the loaded one, not the first
    assert Scenario.model_validate(sim_control.state()) == other


def test_bad_scenario_is_400(sim_control: SimulatorControl) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        sim_control._call("POST", "/_sim/scenario", {"accounts": [{"catalog": 1}]})
    assert caught.value.code == 400


def test_config_partial_updates(sim_control: SimulatorControl) -> None:
    sim_control.configure(faults={"get": {"p_500": 0.5}})
    config = sim_control.configure(
        rate_limit_per_minute=1000,
        faults={"get": {"latency": {"distribution": "constant", "ms": 5}}},
    )
    assert config["rate_limit_per_minute"] == 1000
    assert config["faults"]["get"]["p_500"] == 0.5
    assert config["faults"]["get"]["latency"]["ms"] == 5
    assert config["faults"]["append"]["p_500"] == 0.0
    assert sim_control.config() == config


@pytest.mark.parametrize(
    "bad",
    [
        {"validation_mode": "e"},
        {"no_such_key": 1},
        {"faults": {"archive": {"p_500": 1}}},
        {"faults": {"get": {"p_500": 2}}},
        {"products_cap": 0},
    ],
)
def test_bad_config_is_400_and_changes_nothing(
    sim_control: SimulatorControl, bad: dict[str, object]
) -> None:
    before = sim_control.config()
    with pytest.raises(urllib.error.HTTPError) as caught:
        sim_control.configure(**bad)
    assert caught.value.code == 400
    assert sim_control.config() == before
