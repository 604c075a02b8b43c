"""Every injected fault: status, body and the resulting state; seeded, so deterministic."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
from decimal import Decimal

import pytest

from tests.integration.simulator.api import Api, auction, item, unpromoted
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import Scenario


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("p_500", 500, "internal-error"),
        ("p_502", 502, "bad-gateway"),
        ("p_503", 503, "service-unavailable"),
    ],
)
def test_server_errors_apply_nothing(
    api: Api,
    sim_control: SimulatorControl,
    sim_scenario: Scenario,
    fault: str,
    status: int,
    code: str,
) -> None:
    li, catalog = auction(sim_scenario)
    new = unpromoted(li, catalog)[0]
    api.get_token()
    sim_control.configure(faults={"append": {fault: 1.0}})
    answer = api.write("append", li.id, [item(new)])
    assert answer.status == status
    assert answer.errors[0]["code"] == code
    assert new not in sim_control.products(li.id)
    assert api.get(li.id).status == 200  # other endpoints unaffected
    assert sim_control.requests()["by_endpoint"]["append"] == {str(status): 1}


def test_errors_after_apply_answer_500_but_apply(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, catalog = auction(sim_scenario)
    new = unpromoted(li, catalog)[0]
    api.get_token()
    sim_control.configure(errors_after_apply=True, faults={"append": {"p_500": 1.0}})
    assert api.write("append", li.id, [item(new)]).status == 500
    assert new in sim_control.products(li.id)


def test_hang_outlives_a_short_client_timeout(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    api.get_token()
    sim_control.configure(faults={"pause": {"p_hang": 1.0}})
    api.timeout = 0.3
    start = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        api.write("pause", li.id, [item(li.products[0].sku)])
    assert time.monotonic() - start < 2
    assert sim_control.products(li.id)[li.products[0].sku]["status"] == li.products[0].status
    assert sim_control.requests()["by_endpoint"]["pause"] == {"hang": 1}
    assert sim_control.config()["hang_seconds"] == 600


def test_connection_reset(api: Api, sim_control: SimulatorControl, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    api.get_token()
    sim_control.configure(faults={"get": {"p_reset": 1.0}})
    with pytest.raises(
        (ConnectionResetError, http.client.RemoteDisconnected, urllib.error.URLError)
    ):
        api.get(li.id)
    assert sim_control.requests()["by_endpoint"]["get"] == {"reset": 1}


def test_token_endpoint_faults(api: Api, sim_control: SimulatorControl) -> None:
    sim_control.configure(faults={"token": {"p_503": 1.0}})
    answer = api.get_token()
    assert answer.status == 503
    assert api.token is None


def test_token_expiring_early(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    api.get_token()
    sim_control.configure(faults={"get": {"p_token_expired": 1.0}})
    answer = api.get(li.id)
    assert answer.status == 401
    assert answer.errors[0]["code"] == "authorization-token-expired"
    sim_control.configure(faults={"get": {"p_token_expired": 0.0}})
    assert api.get(li.id).status == 401  # the token stays dead
    api.get_token()
    assert api.get(li.id).status == 200


def test_append_answering_204_without_changing_the_bid(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, catalog = auction(sim_scenario)
    existing = li.products[0]
    new = unpromoted(li, catalog)[0]
    before = sim_control.products(li.id)[existing.sku]["bidOverride"]
    api.get_token()
    sim_control.configure(faults={"append": {"p_bid_ignored": 1.0}})
    bid = float(catalog[existing.sku] + Decimal("2"))
    answer = api.write("append", li.id, [item(existing.sku, bid), item(new, bid)])
    assert answer.status == 204
    assert answer.body is None
    products = sim_control.products(li.id)
    assert products[existing.sku]["bidOverride"] == before != bid
    assert products[new]["bidOverride"] == bid  # a new product takes its bid
    assert sim_control.requests()["log"][-1]["fault"] == "bid_ignored"


def test_constant_latency(api: Api, sim_control: SimulatorControl, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    api.get_token()
    sim_control.configure(faults={"get": {"latency": {"distribution": "constant", "ms": 200}}})
    start = time.monotonic()
    assert api.get(li.id).status == 200
    assert 0.2 <= time.monotonic() - start < 1.0


def test_uniform_latency_on_every_endpoint(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    sim_control.configure(
        faults={"*": {"latency": {"distribution": "uniform", "min_ms": 100, "max_ms": 150}}}
    )
    start = time.monotonic()
    api.get_token()
    api.write("pause", li.id, [item(li.products[0].sku)])
    assert 0.2 <= time.monotonic() - start < 1.0


def _outcomes(api: Api, line_item_id: int, n: int) -> list[int]:
    out = []
    for _ in range(n):
        try:
            out.append(api.get(line_item_id).status)
        except (ConnectionResetError, http.client.RemoteDisconnected, urllib.error.URLError):
            out.append(-1)
    return out


def test_faults_are_seeded_and_repeat_after_reset(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    api.get_token()
    faults = {"get": {"p_500": 0.2, "p_503": 0.2, "p_reset": 0.1}}
    sim_control.configure(faults=faults)
    first = _outcomes(api, li.id, 30)
    sim_control.reset()
    second = _outcomes(api, li.id, 30)
    assert first == second
    assert {200, 500, 503, -1} <= set(first)
