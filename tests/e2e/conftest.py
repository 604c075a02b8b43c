"""A real stack for end-to-end tests: the simulator, `promobulk` CLI and worker processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from worker.localstack import stack_env, start_worker, stop_process
from worker.simulator.control import SimulatorControl
from worker.simulator.server import RunningSimulator, start_in_thread

E2E_RATE_LIMIT = 6000


@dataclass
class Stack:
    env: dict[str, str]
    sim: RunningSimulator
    control: SimulatorControl
    workers: list[subprocess.Popen[bytes]]

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run the installed `promobulk` entry point as a user would."""
        result = subprocess.run(
            [str(Path(sys.executable).parent / "promobulk"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"promobulk {args} -> {result.returncode}\n{result.stderr}")
        return result

    def wait_for_job(self, job_id: int, timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = json.loads(self.cli("status", str(job_id), "--json", check=True).stdout)
            if status["status"] not in ("queued", "running"):
                return dict(status)
            time.sleep(1)
        raise AssertionError(f"job {job_id} did not finish in {timeout}s: {status}")

    def start_worker(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        process = start_worker(self.env, concurrency=concurrency)
        self.workers.append(process)
        return process


@pytest.fixture
def stack(database_url: str, redis_url: str) -> Iterator[Stack]:
    redis.Redis.from_url(redis_url).flushdb()
    sim = start_in_thread()
    control = SimulatorControl(sim.url)
    control.configure(rate_limit_per_minute=E2E_RATE_LIMIT)
    env = stack_env(
        database_url=database_url,
        redis_url=redis_url,
        api_url=sim.url,
        rate_limit=E2E_RATE_LIMIT,
    )
    env.pop("CELERY_BROKER_URL", None)
    s = Stack(env, sim, control, [])
    try:
        yield s
    finally:
        for process in s.workers:
            stop_process(process)
        sim.stop()
