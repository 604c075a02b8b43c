"""RabbitMQ as the broker, end to end: the job's messages go through RabbitMQ, the rate limiter and
the token stay on Redis, and beat's sweep (which counts the waiting messages with passive
declares) re-sends what the broker lost. Judged by the simulator, as the Redis runs are."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import redis
import sqlalchemy as sa
from kombu import Connection

from tests.conftest import until
from tests.e2e.conftest import FAST_RECOVERY, Stack, item_rows, make_stack
from tests.e2e.judge import assert_outcomes, assert_state, counts_of
from tests.e2e.oracle import expect
from worker.sample import sample_rows, write_csv
from worker.simulator.scenario import DEFAULT_CLIENT_ID, generate

pytestmark = pytest.mark.e2e

AMQP_URL = os.environ.get("PROMOBULK_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
QUEUES = ("promobulk.high", "promobulk.normal")


def _rabbitmq_answers() -> bool:
    parts = urlsplit(AMQP_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 2):
            pass
        with Connection(AMQP_URL, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception:
        return False
    return True


def _waiting(queue: str) -> int:
    with Connection(AMQP_URL) as connection, connection.channel() as channel:
        try:
            declared = cast(Any, channel).queue_declare(queue=queue, passive=True)
            return int(declared.message_count)
        except connection.channel_errors:
            return 0


def _purge() -> None:
    """Leftovers of another run would be claimed by nobody, but they would be counted."""
    with Connection(AMQP_URL) as connection:
        for queue in QUEUES:
            with contextlib.suppress(*connection.channel_errors), connection.channel() as ch:
                cast(Any, ch).queue_purge(queue)


@pytest.fixture
def rabbit_stack(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    if not _rabbitmq_answers():
        pytest.skip(f"no RabbitMQ answers at {AMQP_URL} (set PROMOBULK_TEST_AMQP_URL)")
    _purge()
    env = {**FAST_RECOVERY, "CELERY_BROKER_URL": AMQP_URL}
    with make_stack(database_url, redis_url, tmp_path, env=env) as stack:
        yield stack
    _purge()


def test_a_job_runs_with_rabbitmq_as_the_broker_and_beat_resends_lost_messages(
    rabbit_stack: Stack, engine: sa.Engine, redis_url: str, tmp_path: Path
) -> None:
    stack = rabbit_stack
    scenario = generate(seed=51, line_items=20, skus_per_line_item=40)
    stack.control.load(scenario)
    rows = sample_rows(scenario, seed=51)
    expected = expect(scenario, rows)
    line_items = len({r["line_item_id"] for r in rows})

    # Submitted with no worker running: one message per chunk waits in RabbitMQ, none in Redis.
    job_id = stack.submit(write_csv(rows, tmp_path / "night.csv"))
    assert until(lambda: _waiting("promobulk.normal") == line_items, 10, "the messages")
    cache = redis.Redis.from_url(redis_url)
    assert not cache.exists(*QUEUES)

    # The broker loses them; beat's sweep sees empty queues and sends the chunks again.
    _purge()
    assert _waiting("promobulk.normal") == 0
    stack.start_worker(concurrency=2)
    stack.start_beat()
    status = stack.wait_for_job(job_id, timeout=180)

    items = item_rows(engine, job_id)
    assert_outcomes(items, expected)
    assert status["status"] == "completed_with_failures"
    assert status["counts"] == counts_of(items)
    assert_state(stack.control, expected)
    # The limiter's budget and the token lived on Redis all along.
    assert cache.exists(f"promobulk:criteo:ratelimit:{DEFAULT_CLIENT_ID}")
    assert cache.exists(f"promobulk:criteo:token:{DEFAULT_CLIENT_ID}")
    assert not cache.exists(*QUEUES)
    cache.close()
