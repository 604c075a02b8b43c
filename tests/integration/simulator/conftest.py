from __future__ import annotations

import pytest

from tests.integration.simulator.api import Api
from worker.simulator.server import RunningSimulator


@pytest.fixture
def api(simulator: RunningSimulator) -> Api:
    return Api(simulator.url)
