"""`run_forever` (behind `promobulk simulator`) serves a scenario file in its own process."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import worker.simulator
from tests.conftest import free_port
from tests.integration.simulator.api import Api, item
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import Scenario

DEMO = Path(worker.simulator.__file__).parent / "scenarios" / "demo.json"


def test_serves_the_demo_scenario_file() -> None:
    port = free_port()
    code = (
        "from pathlib import Path; from worker.simulator.server import run_forever; "
        f"run_forever('127.0.0.1', {port}, Path({str(DEMO)!r}), 3)"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        control = SimulatorControl(f"http://127.0.0.1:{port}", timeout=2)
        deadline = time.monotonic() + 15
        while True:
            try:
                state = control.state()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "the simulator did not start"
                time.sleep(0.1)
        scenario = Scenario.from_file(DEMO)
        assert Scenario.model_validate(state) == scenario
        api = Api(control.base_url)
        li = scenario.accounts[0].line_items[0]
        assert api.write("pause", li.id, [item("abc-1")]).status == 204
        assert control.products(li.id)["abc-1"]["status"] == "paused"
    finally:
        process.terminate()
        printed, _ = process.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}" in printed
