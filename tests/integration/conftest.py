"""The shop's night for the integration tests that run jobs in this process: a fresh `base` of
line item ids per test, settings pointing at the simulator, and `night` to submit and run."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import sqlalchemy as sa

from tests import shop
from tests.integration.inprocess import Run, run_job, settings_for
from tests.jobs import forget_facts, make_jobs
from worker.config import Settings
from worker.domain.access import operator
from worker.jobs.documents import JobFields
from worker.jobs.service import Jobs
from worker.simulator.control import SimulatorControl
from worker.simulator.server import RunningSimulator

_bases = itertools.count(3_100_000_000_000_000_000, 1_000)


@pytest.fixture
def base() -> int:
    return next(_bases)


@pytest.fixture
def settings(simulator: RunningSimulator, redis_url: str, clean_redis: object) -> Settings:
    return settings_for(simulator.url, redis_url)


@pytest.fixture
def jobs(engine: sa.Engine) -> Jobs:
    return make_jobs(engine)


@pytest.fixture
def night(
    jobs: Jobs, sim_control: SimulatorControl, settings: Settings, base: int, engine: sa.Engine
) -> Run:
    """Load the shop at `base`, submit its rows (the job's fields as keywords), run the job.
    Starts with no refusal facts."""
    sim_control.load(shop.scenario(base))
    forget_facts(engine)

    def go(submitted_by: str = "cli", **fields: Any) -> int:
        job = jobs.acting_as(operator(submitted_by)).submit_rows(
            shop.rows(base), JobFields.model_validate(fields)
        )
        run_job(engine, job.id, settings)
        return job.id

    return go
