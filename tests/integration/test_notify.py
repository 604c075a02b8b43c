"""Completion notifications against a real receiver: signed, posted once, retried, recorded."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.integration.api.conftest import mixed_items, run_job, runner_settings
from tests.integration.api.test_submit import items
from tests.jobs import WEBHOOK_SECRET, make_jobs, settings_for, submit_rows
from tests.webhook import Receiver, receiving
from worker.config import Settings
from worker.db.notifications import NotificationRepository
from worker.notify import SIGNATURE_HEADER, Delivery, deliver, retry_delay, verify
from worker.simulator.scenario import Scenario
from worker.simulator.server import RunningSimulator


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving(200) as state:
        yield state


def _finished_job(engine: sa.Engine, settings: Settings, scenario: Scenario, url: str) -> int:
    rows, _ = mixed_items(scenario)
    job_id = submit_rows(engine, rows, submitted_by="notify-test", callback_url=url).id
    ended: list[int] = []
    run_job(engine, settings, job_id, notify=ended.append)
    assert ended == [job_id]  # the runner asks once, after the job's last chunk
    return job_id


def _record(engine: sa.Engine, job_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT notify_attempts, notify_last_status, notify_last_error, notified_at"
                " FROM jobs WHERE id = :j"
            ),
            {"j": job_id},
        ).one()


def _deliver(engine: sa.Engine, settings: Settings, job_id: int, attempt: int) -> Delivery:
    return asyncio.run(deliver(engine, settings, job_id, attempt))


@pytest.fixture
def settings(simulator: RunningSimulator, redis_url: str) -> Settings:
    return runner_settings(simulator, redis_url)


def test_a_finished_job_is_posted_once_signed_and_recorded(
    engine: sa.Engine, settings: Settings, sim_scenario: Scenario, receiver: Receiver
) -> None:
    job_id = _finished_job(engine, settings, sim_scenario, receiver.url)
    assert _deliver(engine, settings, job_id, 0) is Delivery.DELIVERED
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert headers["Content-Type"] == "application/json"
    assert verify(body, WEBHOOK_SECRET, headers[SIGNATURE_HEADER])
    assert not verify(body + b" ", WEBHOOK_SECRET, headers[SIGNATURE_HEADER])
    sent = json.loads(body)
    assert sent["event"] == "job.finished"
    assert sent["job"]["id"] == job_id
    assert sent["job"]["status"] == "completed_with_failures"
    assert sent["job"]["counts"]["failed"] == 2
    assert WEBHOOK_SECRET not in body.decode()
    record = _record(engine, job_id)
    assert (record.notify_attempts, record.notify_last_status) == (1, 200)
    assert record.notified_at is not None
    # A duplicated message, or a retry message after success, sends nothing more.
    assert _deliver(engine, settings, job_id, 0) is Delivery.NOT_DUE
    assert _deliver(engine, settings, job_id, 1) is Delivery.NOT_DUE
    assert len(receiver.received) == 1


def test_a_refused_delivery_is_retried_until_it_is_accepted(
    engine: sa.Engine, settings: Settings, sim_scenario: Scenario, receiver: Receiver
) -> None:
    receiver.answers[:] = [503, 500, 200]
    job_id = _finished_job(engine, settings, sim_scenario, receiver.url)
    assert _deliver(engine, settings, job_id, 0) is Delivery.RETRY
    record = _record(engine, job_id)
    assert (record.notify_last_status, record.notify_last_error) == (503, "HTTP 503")
    assert record.notified_at is None
    assert _deliver(engine, settings, job_id, 1) is Delivery.RETRY
    assert _deliver(engine, settings, job_id, 2) is Delivery.DELIVERED
    bodies = {body for _, body in receiver.received}
    assert len(receiver.received) == 3
    assert len(bodies) == 1  # the same document every time
    assert _record(engine, job_id).notify_attempts == 3


def test_delivery_gives_up_after_the_last_attempt(
    engine: sa.Engine, settings: Settings, sim_scenario: Scenario, receiver: Receiver
) -> None:
    receiver.answers[:] = [500]
    capped = settings.model_copy(update={"webhook_max_attempts": 2})
    job_id = _finished_job(engine, capped, sim_scenario, receiver.url)
    assert _deliver(engine, capped, job_id, 0) is Delivery.RETRY
    assert _deliver(engine, capped, job_id, 1) is Delivery.GAVE_UP
    record = _record(engine, job_id)
    assert (record.notify_attempts, record.notify_last_error) == (2, "HTTP 500")
    assert record.notified_at is None


def test_an_unreachable_receiver_is_recorded_as_such(
    engine: sa.Engine, settings: Settings, sim_scenario: Scenario
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    job_id = _finished_job(engine, settings, sim_scenario, f"http://127.0.0.1:{closed_port}/x")
    assert _deliver(engine, settings, job_id, 0) is Delivery.RETRY
    record = _record(engine, job_id)
    assert record.notify_last_status is None
    assert "Connect" in record.notify_last_error


def test_nothing_is_sent_unsigned(
    engine: sa.Engine, settings: Settings, sim_scenario: Scenario, receiver: Receiver
) -> None:
    job_id = _finished_job(engine, settings, sim_scenario, receiver.url)
    unsigned = settings.model_copy(
        update={"webhook_secret": settings_for().webhook_secret.__class__("")}
    )
    assert _deliver(engine, unsigned, job_id, 0) is Delivery.GAVE_UP
    assert receiver.received == []
    assert "PROMOBULK_WEBHOOK_SECRET" in _record(engine, job_id).notify_last_error


def test_a_job_still_running_is_not_notified_and_a_cancelled_one_waits_for_the_sweep(
    engine: sa.Engine, settings: Settings, receiver: Receiver
) -> None:
    job_id = submit_rows(engine, items(2), submitted_by="notify-test", callback_url=receiver.url).id
    assert _deliver(engine, settings, job_id, 0) is Delivery.NOT_DUE
    assert _record(engine, job_id).notify_attempts == 0
    with Session(engine) as session:
        assert job_id not in NotificationRepository(session).unsent(older_than_seconds=0)
    make_jobs(engine).cancel(job_id)  # ended with no runner: the sweep is what sends it
    with Session(engine) as session:
        assert job_id in NotificationRepository(session).unsent(older_than_seconds=0)
    assert _deliver(engine, settings, job_id, 0) is Delivery.DELIVERED
    assert json.loads(receiver.received[0][1])["job"]["status"] == "cancelled"
    with Session(engine) as session:
        assert job_id not in NotificationRepository(session).unsent(older_than_seconds=0)


def test_the_backoff_doubles_and_is_capped() -> None:
    s = settings_for(
        PROMOBULK_WEBHOOK_RETRY_BASE_SECONDS=10, PROMOBULK_WEBHOOK_RETRY_MAX_SECONDS=60
    )
    assert [retry_delay(s, n) for n in range(5)] == [10, 20, 40, 60, 60]
