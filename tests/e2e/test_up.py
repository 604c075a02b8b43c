"""`promobulk up` as a user runs it (issue 14, point 1): a subprocess in a fresh state folder, a
job submitted through the URL and key it prints, stopped with Ctrl-C mid-job, started again, and
every SKU right in the end; then the same through the CLI from another process that is given no
setting at all, the stack being found through the state folder."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import free_port, until
from tests.e2e.conftest import item_rows
from tests.e2e.judge import assert_outcomes, assert_state
from tests.e2e.oracle import Expectation, expect
from worker.client import PromobulkClient
from worker.sample import sample_rows, write_csv
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import Scenario, generate

pytestmark = pytest.mark.e2e

PROMOBULK = str(Path(sys.executable).parent / "promobulk")
RATE = 600  # calls a minute: a job of 21 line items takes about 10 s


@dataclass
class User:
    """A user's machine: a home of their own (the state folder is found from it), an empty
    folder to work in, and no promobulk setting in the environment."""

    folder: Path
    env: dict[str, str]
    ups: list[subprocess.Popen[str]] = field(default_factory=list)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PROMOBULK, *args],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def json(self, *args: str) -> Any:
        """The command's (last) JSON line."""
        result = self.cli(*args, "--json")
        assert result.returncode in (0, 3), result.stderr
        return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture
def user() -> Iterator[User]:
    # Not under pytest's tree: as root, pgserver runs Postgres as its own user, who must be able
    # to reach the state folder (see tests/conftest.postgres_dir).
    folder = Path(tempfile.mkdtemp(prefix="promobulk-up-"))
    folder.chmod(0o755)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PROMOBULK_", "CRITEO_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env["XDG_DATA_HOME"] = str(folder / "data")
    person = User(folder, env)
    yield person
    for process in person.ups:  # a failed test stops what it started, in order
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(90)
        if process.stdout is not None:
            process.stdout.close()
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Up:
    process: subprocess.Popen[str]
    ready: dict[str, Any]
    seconds: float

    def interrupt(self) -> float:
        """SIGINT, as Ctrl-C sends; the seconds until everything stopped."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(90) == 0
        return time.monotonic() - began


def start_up(user: User, port: int) -> Up:
    env = {**user.env, "CRITEO_RATE_LIMIT_PER_MINUTE": str(RATE)}
    began = time.monotonic()
    with (user.folder / "up.err").open("a") as err:
        process = subprocess.Popen(
            [PROMOBULK, "up", "--simulator", "--json", "--port", str(port)],
            env=env,
            cwd=user.folder,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    user.ups.append(process)
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        if not selector.select(timeout=120):
            raise AssertionError((user.folder / "up.err").read_text())
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline() or "{}")
    assert "api_url" in ready, (ready, (user.folder / "up.err").read_text())
    return Up(process, ready, time.monotonic() - began)


def load_job(simulator_url: str, seed: int) -> tuple[Scenario, list[dict[str, str]]]:
    scenario = generate(seed=seed, line_items=20, skus_per_line_item=20)
    SimulatorControl(simulator_url).load(scenario)
    return scenario, sample_rows(scenario, seed=seed)


def judge(database_url: str, simulator_url: str, job_id: int, expected: Expectation) -> None:
    engine = sa.create_engine(database_url)
    try:
        assert_outcomes(item_rows(engine, job_id), expected)
    finally:
        engine.dispose()
    assert_state(SimulatorControl(simulator_url), expected)


def test_up_survives_ctrl_c_mid_job_and_other_shells_find_it(user: User) -> None:
    port = free_port()
    first = start_up(user, port)
    ready = first.ready
    assert ready["state_dir"] == str(user.folder / "data" / "promobulk")
    assert ready["api_url"] == f"http://127.0.0.1:{port}"
    assert ready["api_key"].startswith("pbk_")
    assert ready["database_url"].startswith("postgresql+psycopg://")
    assert ready["redis_url"].startswith("redis://127.0.0.1:")

    # Through the printed URL and key.
    scenario, rows = load_job(ready["simulator_url"], seed=101)
    expected = expect(scenario, rows)
    api = PromobulkClient(ready["api_url"], ready["api_key"])
    job_id = api.submit_csv(write_csv(rows, user.folder / "night.csv").read_bytes())["id"]
    until(lambda: api.job(job_id)["done"] >= len(rows) // 4, 60, "a quarter of the job")
    stopped_in = first.interrupt()
    assert not (user.folder / "data" / "promobulk" / "stack.json").exists()

    second = start_up(user, port)
    assert second.ready["api_key"] is None  # shown once, on the first start
    api = PromobulkClient(second.ready["api_url"], ready["api_key"])
    resumed = api.job(job_id)
    assert resumed["status"] == "running"
    done_at_restart = resumed["done"]
    restarted = time.monotonic()
    until(lambda: api.job(job_id)["done"] > done_at_restart, 60, "progress after the restart")
    resumed_in = time.monotonic() - restarted
    until(lambda: api.job(job_id)["status"] != "running", 120, "the job to finish")
    judge(second.ready["database_url"], second.ready["simulator_url"], job_id, expected)

    # The same from another process given no setting: it finds the running stack.
    scenario, rows = load_job(second.ready["simulator_url"], seed=102)
    expected = expect(scenario, rows)
    csv_path = write_csv(rows, user.folder / "second.csv")
    cli_job = user.json("submit", str(csv_path))["id"]
    until(lambda: user.json("status", str(cli_job))["done"] >= len(rows) // 4, 60, "progress")
    second.interrupt()

    third = start_up(user, port)
    finished = user.json("watch", str(cli_job))
    assert finished["status"] == "completed_with_failures"
    assert finished["done"] == len(rows)
    judge(third.ready["database_url"], third.ready["simulator_url"], cli_job, expected)
    listed = user.json("list")["jobs"]
    assert [j["id"] for j in listed] == [cli_job, job_id]
    last_stop = third.interrupt()
    print(
        f"\nup: cold start {first.seconds:.1f}s, restarts {second.seconds:.1f}s and"
        f" {third.seconds:.1f}s; Ctrl-C stopped it in {stopped_in:.1f}s and"
        f" {last_stop:.1f}s; first progress {resumed_in:.1f}s after the restart"
    )
