"""Simulator fixtures for every team: one server per session, reset to a small scenario per test.

`simulator` is a `RunningSimulator` whose state, log and config are fresh for each test;
`sim_control` talks to its `/_sim/` surface; `sim_scenario` is the scenario it was reset to.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import Scenario, generate
from worker.simulator.server import RunningSimulator, start_in_thread

SIM_SEED = 1234


def small_scenario() -> Scenario:
    """6 line items of 10 SKUs over 2 accounts whose catalogs hold 30 SKUs; the second generated
    line item has preferred deals."""
    return generate(SIM_SEED, line_items=6, skus_per_line_item=10, catalog_extra=20)


@pytest.fixture(scope="session")
def _simulator_server() -> Iterator[RunningSimulator]:
    running = start_in_thread(small_scenario(), seed=SIM_SEED)
    yield running
    running.stop()


@pytest.fixture
def sim_scenario() -> Scenario:
    """The scenario each test starts from (see `small_scenario`)."""
    return small_scenario()


@pytest.fixture
def simulator(_simulator_server: RunningSimulator, sim_scenario: Scenario) -> RunningSimulator:
    control = SimulatorControl(_simulator_server.url)
    control.load(sim_scenario)
    control.reset(config=True)
    return _simulator_server


@pytest.fixture
def sim_control(simulator: RunningSimulator) -> SimulatorControl:
    return SimulatorControl(simulator.url)
