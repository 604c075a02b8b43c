"""A 2,000 by 100 scenario: requests stay O(request size), inspection stays usable."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.integration.simulator.api import Api, item, unpromoted
from worker.simulator.config import SimConfig
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import Scenario, generate
from worker.simulator.server import RunningSimulator, start_in_thread


@pytest.fixture(scope="module")
def large() -> Iterator[tuple[RunningSimulator, Scenario]]:
    scenario = generate(5, line_items=2000, skus_per_line_item=100)
    running = start_in_thread(scenario, seed=5, config=SimConfig(rate_limit_per_minute=1_000_000))
    yield running, scenario
    running.stop()


def test_requests_on_a_large_scenario_are_fast(large: tuple[RunningSimulator, Scenario]) -> None:
    running, scenario = large
    api = Api(running.url)
    api.get_token()
    li = scenario.accounts[1].line_items[-1]
    catalog = {e.sku: e.minBid for e in scenario.accounts[1].catalog}
    new = unpromoted(li, catalog)[:20]
    timings = []
    for _ in range(20):
        start = time.monotonic()
        assert api.get(li.id, "fields=status,bidOverride").status == 200
        assert api.write("append", li.id, [item(s) for s in new]).status == 200
        timings.append(time.monotonic() - start)
    assert sorted(timings)[10] < 0.05  # median of a GET of 100 + an append of 20
    control = SimulatorControl(running.url)
    assert len(control.products(li.id)) == 120
    start = time.monotonic()
    state = control.state()
    assert time.monotonic() - start < 3
    assert sum(len(a["line_items"]) for a in state["accounts"]) == 2000
    tail = control.requests(since=40, limit=5)
    assert tail["total"] == 41
    assert [e["seq"] for e in tail["log"]] == [41]
