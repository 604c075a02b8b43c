"""Retry, revert and cancel, on jobs the runner really ran against the simulator."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from tests.integration.api.conftest import Api, mixed_items
from tests.integration.api.test_submit import items
from worker.simulator.scenario import Scenario


def _run(api: Api, job_runner: Callable[[int], None], scenario: Scenario) -> int:
    rows, _ = mixed_items(scenario)
    job_id = int(api.client.submit(rows)["id"])
    job_runner(job_id)
    return job_id


def test_retry_makes_a_child_job_of_exactly_the_failed_skus(
    api: Api, job_runner: Callable[[int], None], sim_scenario: Scenario
) -> None:
    _rows, n_failing = mixed_items(sim_scenario)
    job_id = _run(api, job_runner, sim_scenario)
    parent = api.client.job(job_id)
    assert parent["status"] == "completed_with_failures"
    assert parent["counts"]["failed"] == n_failing
    assert parent["completion_ratio"] == 1
    assert parent["eta_seconds"] is None
    failed = {i["sku_id"] for i in api.client.items(job_id, status="failed")}

    reply = api.call("POST", f"/v1/jobs/{job_id}/retry")
    assert reply.status == 201
    child = reply.json
    assert reply.headers["Location"] == f"/v1/jobs/{child['id']}"
    assert child["parent_job_id"] == job_id
    assert child["derived_reason"] == "retry"
    assert child["submitted_by"] == api.submitter
    assert child["total"] == n_failing
    assert {i["sku_id"] for i in api.client.items(child["id"])} == failed
    assert api.dispatched  # the child's chunks went to the workers


def test_retry_of_some_error_kinds_only(
    api: Api, job_runner: Callable[[int], None], sim_scenario: Scenario
) -> None:
    job_id = _run(api, job_runner, sim_scenario)
    kinds = {i["error_kind"] for i in api.client.items(job_id, status="failed")}
    kind = sorted(kinds)[0]
    wanted = {i["sku_id"] for i in api.client.items(job_id, error_kind=kind)}
    child = api.client.retry(job_id, error_kinds=[kind], idempotency_key="retry-1")
    assert {i["sku_id"] for i in api.client.items(child["id"])} == wanted
    again = api.call(
        "POST", f"/v1/jobs/{job_id}/retry", {"error_kinds": [kind], "idempotency_key": "retry-1"}
    )
    assert again.status == 200
    assert again.json["id"] == child["id"]
    none_of_these = api.call("POST", f"/v1/jobs/{job_id}/retry", {"error_kinds": ["forbidden"]})
    assert none_of_these.status == 409
    bad_bodies: list[object] = [
        {"error_kinds": []},
        {"error_kinds": ["nope"]},
        {"whatever": 1},
        [1],
    ]
    for bad in bad_bodies:
        assert api.call("POST", f"/v1/jobs/{job_id}/retry", bad).status == 400, bad


def test_retry_and_revert_wait_for_the_job_to_finish(api: Api) -> None:
    job_id = api.client.submit(items(2))["id"]
    for verb in ("retry", "revert"):
        reply = api.call("POST", f"/v1/jobs/{job_id}/{verb}")
        assert reply.status == 409, verb
        assert "once it has finished" in reply.json["detail"]
        assert api.call("POST", f"/v1/jobs/987654321/{verb}").status == 404


def test_revert_makes_a_child_job_restoring_the_before_values(
    api: Api, job_runner: Callable[[int], None], sim_scenario: Scenario
) -> None:
    job_id = _run(api, job_runner, sim_scenario)
    changed = {i["sku_id"]: i["bid_before"] for i in api.client.items(job_id, status="succeeded")}
    reply = api.call("POST", f"/v1/jobs/{job_id}/revert", {"idempotency_key": "undo-1"})
    assert reply.status == 201
    child = reply.json
    assert child["derived_reason"] == "revert"
    assert child["parent_job_id"] == job_id
    assert isinstance(child["skipped"], dict)
    restored = {i["sku_id"]: i["bid_override"] for i in api.client.items(child["id"])}
    assert restored
    assert set(restored) <= set(changed)
    assert len(restored) + sum(child["skipped"].values()) == len(changed)
    assert all(restored[s] == changed[s] for s in restored if changed[s] is not None)
    assert api.client.revert(job_id, idempotency_key="undo-1")["id"] == child["id"]


def test_cancel_answers_the_job_and_an_unknown_one_is_a_404(api: Api) -> None:
    job_id = api.client.submit(items(3, line_items=3))["id"]
    reply = api.call("POST", f"/v1/jobs/{job_id}/cancel")
    assert reply.status == 200
    assert reply.json["status"] == "cancelled"
    assert reply.json["counts"] == {"cancelled": 3}
    with api.engine.connect() as conn:
        statuses = (
            conn.execute(
                sa.text("SELECT DISTINCT status FROM chunks WHERE job_id = :j"), {"j": job_id}
            )
            .scalars()
            .all()
        )
    assert statuses == ["cancelled"]
    assert api.call("POST", f"/v1/jobs/{job_id}/cancel").json["status"] == "cancelled"
    assert api.call("POST", "/v1/jobs/987654321/cancel").status == 404
