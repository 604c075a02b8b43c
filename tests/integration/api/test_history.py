"""A (line item, SKU)'s history over HTTP, job lists filtered by date, dry run and parent, a dry
run applied for real, and the options a job runs with; on jobs the runner really ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from tests.integration.api.conftest import Api, mixed_items
from tests.jobs import make_jobs
from worker.domain.enums import Role
from worker.simulator.scenario import Scenario


def test_a_skus_history_across_jobs_newest_first_paged_and_by_role(
    api: Api, job_runner: Callable[[int], None], sim_scenario: Scenario
) -> None:
    rows, _ = mixed_items(sim_scenario)
    first = api.client.submit(rows)["id"]
    job_runner(first)
    dry = api.client.submit(rows[:1], dry_run=True)["id"]
    job_runner(dry)
    retry = api.client.retry(first)["id"]
    line_item, sku = rows[0]["line_item_id"], rows[0]["sku_id"]
    path = f"/v1/line-items/{line_item}/skus/{quote(sku, safe='')}/history"

    page = api.call("GET", path).json
    assert [e["job_id"] for e in page["entries"]] == [dry, first]  # the retry has not this SKU
    newest, oldest = page["entries"]
    assert newest["dry_run"] is True
    assert newest["description"].startswith("unchanged: already")  # the first job did it
    assert oldest["outcome"] == "succeeded"
    assert oldest["submitted_by"] == api.submitter
    assert oldest["bid_after"] == oldest["bid_override"]
    one = api.call("GET", path + "?limit=1").json
    assert [e["job_id"] for e in one["entries"]] == [dry]
    rest = api.call("GET", path + f"?limit=1&cursor={one['next_cursor']}").json
    assert [e["job_id"] for e in rest["entries"]] == [first]
    assert rest["next_cursor"] is None
    failed = next(r for r in rows if r["sku_id"] == "no-such-sku")
    retried = f"/v1/line-items/{line_item}/skus/no-such-sku/history"
    assert [e["job_id"] for e in api.call("GET", retried).json["entries"]] == [retry, first]
    assert failed["action"] == "add"

    # Another submitter sees none of it; a read key sees all of it.
    jobs = make_jobs(api.engine)
    other = jobs.keys.create(f"{api.submitter}-other").key
    assert api.call("GET", path, key=other).json["entries"] == []
    reader = jobs.keys.create(f"{api.submitter}-reader", Role.READ).key
    seen = {e["job_id"] for e in api.call("GET", path, key=reader).json["entries"]}
    assert {dry, first} <= seen  # with other tests' jobs on this SKU
    assert api.call("GET", f"/v1/line-items/0/skus/{sku}/history").status == 400
    assert api.call("GET", path + "?cursor=bogus").status == 400


def test_a_sku_with_a_slash_is_found_by_its_percent_encoded_path(
    api: Api, job_runner: Callable[[int], None]
) -> None:
    job = api.client.submit([{"line_item_id": 31, "sku_id": "a/b c", "action": "pause"}])["id"]
    entries = api.call("GET", "/v1/line-items/31/skus/a%2Fb%20c/history").json["entries"]
    assert [e["job_id"] for e in entries] == [job]
    assert entries[0]["outcome"] == "pending"


def test_job_lists_by_creation_time_dry_run_and_parent(
    api: Api, job_runner: Callable[[int], None], sim_scenario: Scenario
) -> None:
    rows, _ = mixed_items(sim_scenario)
    real = api.client.submit(rows)["id"]
    job_runner(real)
    dry = api.client.submit(rows, dry_run=True)["id"]
    child = api.client.retry(real)["id"]
    mine = f"submitted_by={api.submitter}"

    def ids(query: str) -> list[int]:
        return [j["id"] for j in api.call("GET", f"/v1/jobs?{mine}&{query}").json["jobs"]]

    assert ids("dry_run=true") == [dry]
    assert ids("dry_run=false") == [child, real]
    assert ids(f"parent_job_id={real}") == [child]
    soon = quote((datetime.now(UTC) + timedelta(hours=1)).isoformat())
    past = quote((datetime.now(UTC) - timedelta(hours=1)).isoformat())
    assert ids(f"created_after={soon}") == []
    assert ids(f"created_after={past}&created_before={soon}") == [child, dry, real]
    assert api.call("GET", "/v1/jobs?created_after=yesterday").status == 400
    assert api.call("GET", "/v1/jobs?created_after=2026-01-01T00:00:00").status == 400


def test_a_finished_dry_run_is_applied_for_real_with_its_options(
    api: Api, job_runner: Callable[[int], None], sim_scenario: Scenario
) -> None:
    rows, _ = mixed_items(sim_scenario)
    options = {"max_change_ratio": "10", "max_bid": "40"}
    dry = api.client.submit(rows, dry_run=True, options=options)["id"]
    assert api.call("POST", f"/v1/jobs/{dry}/apply").status == 409  # not finished
    job_runner(dry)
    reply = api.call("POST", f"/v1/jobs/{dry}/apply", {"idempotency_key": "apply-1"})
    assert reply.status == 201
    applied = reply.json
    assert applied["parent_job_id"] == dry
    assert applied["derived_reason"] == "apply"
    assert applied["dry_run"] is False
    assert applied["total"] == len(rows)
    assert applied["options"] == {
        "skip_read": False,
        "guardrails": True,
        "max_bid": "40.00",
        "max_change_ratio": "10",
        "predict": True,
        "clamp_to_min_bid": False,
        "cancel_requested": False,
        "revert_skipped": {},
    }
    again = api.call("POST", f"/v1/jobs/{dry}/apply", {"idempotency_key": "apply-1"})
    assert again.status == 200
    assert again.json["id"] == applied["id"]
    assert api.call("POST", f"/v1/jobs/{applied['id']}/apply").status == 409  # not a dry run
    plain = api.client.job(applied["id"])["options"]
    assert plain["max_change_ratio"] == "10"
    default = api.client.job(api.client.submit(rows[:1])["id"])["options"]
    assert default["max_change_ratio"] == "3"  # the server's PROMOBULK_MAX_CHANGE_RATIO


def test_promobulk_history_prints_a_skus_changes(
    api: Api, job_runner: Callable[[int], None], sim_scenario: Scenario, database_url: str
) -> None:
    rows, _ = mixed_items(sim_scenario)
    job = api.client.submit(rows)["id"]
    job_runner(job)
    cli = [str(Path(sys.executable).parent / "promobulk"), "history"]
    env = {**os.environ, "DATABASE_URL": database_url}
    args = [str(rows[0]["line_item_id"]), str(rows[0]["sku_id"])]
    shown = subprocess.run(
        [*cli, *args, "--json"], env=env, capture_output=True, text=True, check=True
    )
    entries = json.loads(shown.stdout)["entries"]
    assert entries[0]["job_id"] == job
    table = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, check=True)
    assert str(job) in table.stdout
    assert "succeeded" not in table.stdout or "changed" in table.stdout
    bad = subprocess.run([*cli, "0", "x"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2
