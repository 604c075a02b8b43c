"""The simulator as a process of its own (`python -m worker simulator`), so that it never
competes for a GIL with the processes being measured."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.embedded import free_port
from worker.localstack import kill_process, stop_process
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import Scenario


@dataclass
class SimulatorProcess:
    process: subprocess.Popen[bytes]
    url: str
    control: SimulatorControl

    def stop(self) -> None:
        stop_process(self.process, timeout=10)
        kill_process(self.process)

    def log(self) -> list[dict[str, Any]]:
        """Every request the simulator logged since its last reset (token calls included)."""
        entries: list[dict[str, Any]] = []
        while True:
            page = self.control.requests(since=len(entries), limit=50_000, write_counts=False)
            batch = page["log"]
            entries.extend(batch)
            if not batch or len(entries) >= int(page["total"]):
                return entries

    def reset(self, *, rate_limit: int, latency_ms: int) -> None:
        """Back to the scenario's state, an empty log, and this run's rate limit and latency."""
        self.control.reset(config=True)
        latency: dict[str, Any] = (
            {"distribution": "constant", "ms": latency_ms}
            if latency_ms
            else {"distribution": "none"}
        )
        self.control.configure(rate_limit_per_minute=rate_limit, faults={"*": {"latency": latency}})


def start_simulator(scenario: Scenario, workdir: Path, log: Path) -> SimulatorProcess:
    path = workdir / "scenario.json"
    path.write_text(scenario.model_dump_json())
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "worker",
                "simulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--scenario",
                str(path),
            ],
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    control = SimulatorControl(url, timeout=120)
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url + "/_sim/config", timeout=2):  # noqa: S310
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                kill_process(process)
                raise RuntimeError(f"the simulator did not start (see {log})") from None
            time.sleep(0.2)
    return SimulatorProcess(process, url, control)
