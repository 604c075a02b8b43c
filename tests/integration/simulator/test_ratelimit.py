"""Rate limit per client_id over a sliding minute; token calls are not counted."""

from __future__ import annotations

import time

from tests.integration.simulator.api import Api, auction, item
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import READONLY_CLIENT_ID, READONLY_CLIENT_SECRET, Scenario


def test_headers_on_every_response(api: Api, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    token = api.get_token()
    first = api.get(li.id)
    second = api.get(li.id)
    missing = api.request("GET", f"/2026-07/retail-media/line-items/{li.id}/products")
    for answer in (token, first, second, missing):
        assert answer.headers["x-ratelimit-limit"] == "250"
    assert first.headers["x-ratelimit-remaining"] == "249"
    assert second.headers["x-ratelimit-remaining"] == "248"
    reset = int(first.headers["x-ratelimit-reset"])
    assert time.time() + 55 < reset <= time.time() + 61  # epoch seconds, one window ahead


def test_over_the_limit_is_429_quota_without_retry_after(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    sim_control.configure(rate_limit_per_minute=3)
    li, _ = auction(sim_scenario)
    statuses = [api.get(li.id).status for _ in range(3)]
    api.get_token()  # token calls are not counted
    target = li.products[0].sku
    refused = api.write("pause", li.id, [item(target)])
    assert statuses == [200, 200, 200]
    assert refused.status == 429
    assert "retry-after" not in refused.headers
    assert refused.headers["x-ratelimit-remaining"] == "0"
    (problem,) = refused.errors
    assert problem["type"] == "quota"
    assert problem["status"] == 429
    assert sim_control.products(li.id)[target]["status"] == li.products[0].status
    assert sim_control.requests()["by_endpoint"]["pause"] == {"429": 1}


def test_each_client_has_its_own_budget(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    sim_control.configure(rate_limit_per_minute=2)
    li, _ = auction(sim_scenario)
    assert [api.get(li.id).status for _ in range(3)] == [200, 200, 429]
    other = Api(api.base_url)
    other.get_token(READONLY_CLIENT_ID, READONLY_CLIENT_SECRET)
    assert other.get(li.id).status == 200


def test_reset_clears_the_windows(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    sim_control.configure(rate_limit_per_minute=1)
    li, _ = auction(sim_scenario)
    assert [api.get(li.id).status for _ in range(2)] == [200, 429]
    sim_control.reset()
    assert api.get(li.id).status == 200
