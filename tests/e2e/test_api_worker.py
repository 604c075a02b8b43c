"""The HTTP API and the Celery task with real processes: `promobulk api` and `promobulk worker`
from the installed entry point, the simulator, and a webhook receiver on loopback."""

from __future__ import annotations

import json
import time

import pytest
from celery import Celery

from tests.conftest import until
from tests.e2e.conftest import Stack
from tests.integration.api.conftest import mixed_items
from tests.jobs import WEBHOOK_SECRET
from tests.webhook import receiving
from worker.client import ApiError, PromobulkClient, send_job
from worker.notify import SIGNATURE_HEADER, verify
from worker.simulator.scenario import generate

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(stack: Stack) -> tuple[PromobulkClient, Stack]:
    """`promobulk api` and a worker, both with a webhook secret and a quick retry backoff."""
    stack.env.update(
        PROMOBULK_WEBHOOK_SECRET=WEBHOOK_SECRET,
        PROMOBULK_WEBHOOK_RETRY_BASE_SECONDS="0.5",
    )
    # operate: the test also lists jobs another app submitted through the Celery task.
    made = stack.cli("api-key", "create", "e2e-pipeline", "--role", "operate", "--json", check=True)
    key = json.loads(made.stdout)
    url = stack.start_api()
    stack.start_worker()
    return PromobulkClient(url, key["key"]), stack


def test_a_job_submitted_over_http_runs_and_its_callback_is_retried_then_delivered(
    served: tuple[PromobulkClient, Stack],
) -> None:
    client, stack = served
    scenario = generate(seed=31, line_items=3, skus_per_line_item=8)
    stack.control.load(scenario)
    rows, n_failing = mixed_items(scenario)
    with receiving(500, 200) as receiver:
        job = client.submit(rows, callback_url=receiver.url, idempotency_key="e2e-1")
        assert job["submitted_by"] == "e2e-pipeline"
        done = client.wait(job["id"], poll_seconds=0.5, timeout=120)
        assert done["status"] == "completed_with_failures"
        assert done["counts"]["failed"] == n_failing
        until(lambda: len(receiver.received) >= 2, 60, "the callback's second attempt")
        shown = until(
            lambda: (j := client.job(job["id"]))["notification"]["delivered_at"] and j,
            30,
            "the delivery to be recorded",
        )
    assert shown["notification"]["attempts"] == 2
    assert shown["notification"]["last_status"] == 200
    assert len(receiver.received) == 2
    for headers, body in receiver.received:
        assert verify(body, WEBHOOK_SECRET, headers[SIGNATURE_HEADER])
        assert json.loads(body)["job"]["status"] == "completed_with_failures"


def test_another_celery_app_submits_through_the_named_task(
    served: tuple[PromobulkClient, Stack],
) -> None:
    client, stack = served
    scenario = generate(seed=32, line_items=2, skus_per_line_item=6)
    stack.control.load(scenario)
    rows, _ = mixed_items(scenario)
    other = Celery("pricing", broker=stack.env["REDIS_URL"])
    try:
        send_job(other, rows, submitted_by="pricing-celery", idempotency_key="night-1")
        send_job(other, [{"line_item_id": -1}], submitted_by="pricing-celery")
    finally:
        other.close()
    jobs = until(lambda: list(client.jobs(submitted_by="pricing-celery")), 60, "the job")
    done = client.wait(jobs[0]["id"], poll_seconds=0.5, timeout=120)
    assert done["total"] == len(rows)
    assert done["status"] in ("succeeded", "completed_with_failures")
    time.sleep(2)  # the refused message has had its turn: it stored nothing
    assert len(list(client.jobs(submitted_by="pricing-celery"))) == 1
    with pytest.raises(ApiError) as refused:
        client.submit([{"line_item_id": -1}])
    assert refused.value.status == 400
