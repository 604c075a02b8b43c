"""`promobulk up` as a user runs it (issue 14, point 1): a subprocess in a fresh state folder, a
job submitted through the URL and key it prints, stopped with Ctrl-C mid-job, started again, and
every SKU right in the end; then the same through the CLI from another process that is given no
setting at all, the stack being found through the state folder."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from tests.conftest import free_port, until
from tests.e2e.conftest import User, item_rows, start_up
from tests.e2e.judge import assert_outcomes, assert_state
from tests.e2e.oracle import Expectation, expect
from worker.client import PromobulkClient
from worker.sample import sample_rows, write_csv
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import Scenario, generate

pytestmark = pytest.mark.e2e

RATE = 600  # calls a minute: a job of 21 line items takes about 10 s


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
    first = start_up(user, port, rate=RATE)
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

    second = start_up(user, port, rate=RATE)
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

    third = start_up(user, port, rate=RATE)
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
