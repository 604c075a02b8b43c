"""What operators do after a night, through the installed `promobulk` command, a real worker and
the simulator: export the failures, fix and resubmit them; retry; revert; dry-run; doctor."""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests import shop
from tests.conftest import until
from tests.e2e.conftest import Stack
from worker.sample import write_csv
from worker.simulator.scenario import READONLY_CLIENT_ID, READONLY_CLIENT_SECRET

pytestmark = pytest.mark.e2e
_bases = itertools.count(3_200_000_000_000_000_000, 1_000)
PROMOBULK = str(Path(sys.executable).parent / "promobulk")


def night(stack: Stack, tmp_path: Path, *args: str) -> tuple[int, int]:
    """Load the shop, start a worker, run its night; the line item and the finished job."""
    base = next(_bases)
    stack.control.load(shop.scenario(base))
    stack.start_worker(concurrency=2)
    job_id = stack.submit(write_csv(shop.rows(base), tmp_path / "night.csv"), *args)
    assert stack.wait_for_job(job_id)["status"] == "completed_with_failures"
    return base, job_id


def run(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed command with some of the environment changed."""
    return subprocess.run(
        [PROMOBULK, *args], env={**stack.env, **env}, capture_output=True, text=True, timeout=120
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def test_export_fix_and_resubmit_the_failures_as_they_are(stack: Stack, tmp_path: Path) -> None:
    base, job_id = night(stack, tmp_path)
    exported = tmp_path / "failed.csv"
    result = stack.cli("items", str(job_id), "--status", "failed", "--output", str(exported))
    assert result.returncode == 0, result.stderr
    with exported.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        failed = list(reader)
    assert {r["sku_id"]: r["error_kind"] for r in failed} == {
        "p2": "guardrail",
        "cheap": "validation",
        "p10": "not_on_line_item",
        "ghost": "line_item_not_found",
    }

    # The fixes an operator makes in a spreadsheet; every other column stays as exported.
    fixes = {
        "p2": {"bid_override": "2.5"},
        "cheap": {"bid_override": "0.55"},
        "p10": {"action": "add"},
    }
    fixed = [{**r, **fixes[r["sku_id"]]} for r in failed if r["sku_id"] in fixes]
    with (tmp_path / "fixed.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(fixed)
    again = stack.submit(tmp_path / "fixed.csv")
    status = stack.wait_for_job(again)
    assert (status["status"], status["counts"]) == ("succeeded", {"succeeded": 3})
    products = stack.control.products(base)
    assert Decimal(str(products["p2"]["bidOverride"])) == Decimal("2.5")
    assert Decimal(str(products["cheap"]["bidOverride"])) == Decimal("0.55")
    assert Decimal(str(products["p10"]["bidOverride"])) == Decimal("0.5")


def test_retry_makes_a_linked_child_of_exactly_the_failed_skus(
    stack: Stack, tmp_path: Path
) -> None:
    base, job_id = night(stack, tmp_path)
    child = as_json(stack.cli("retry", str(job_id), "--json", check=True))
    status = stack.status(child["id"])
    assert (status["parent_job_id"], status["derived_reason"]) == (job_id, "retry")
    items = as_json(stack.cli("items", str(child["id"]), "--format", "json", check=True))
    assert {(int(i["line_item_id"]), i["sku_id"]) for i in items} == {
        k for k, (outcome, _) in shop.expected(base).items() if outcome == "failed"
    }
    stack.wait_for_job(child["id"])

    # Only the guardrail failure, with the guardrails lifted for the child.
    lifted = stack.cli(
        "retry", str(job_id), "--error-kind", "guardrail", "--no-guardrails", "--wait", "--json"
    )
    assert lifted.returncode == 0, lifted.stderr
    assert as_json(lifted)["counts"] == {"succeeded": 1}
    assert stack.control.products(base)["p2"]["bidOverride"] == 9.0

    nothing = stack.cli("retry", str(job_id), "--error-kind", "bid_not_applied")
    assert nothing.returncode == 6
    assert "no failed SKUs" in nothing.stderr
    assert stack.cli("retry", "999999999").returncode == 5


def test_revert_restores_the_exact_before_state_in_the_simulator(
    stack: Stack, tmp_path: Path
) -> None:
    base, job_id = night(stack, tmp_path)
    touched = shop.products(stack.control.state(), base)
    assert touched != shop.initial(base)
    reverted = stack.cli("revert", str(job_id), "--wait", "--json")
    assert reverted.returncode == 0, reverted.stderr
    child = as_json(reverted)
    assert (child["parent_job_id"], child["derived_reason"]) == (job_id, "revert")

    now = shop.products(stack.control.state(), base)
    before = shop.initial(base)
    restorable = (set(before) | set(now)) - set(shop.NOT_REVERTIBLE)
    assert {s: now.get(s) for s in restorable} == {s: before.get(s) for s in restorable}
    assert now.get("p3") == (None, "active")  # its override cleared again
    # What one action cannot restore is reported, and left as the parent made it.
    assert "p7" not in now

    human = stack.cli("revert", str(job_id))
    assert human.returncode == 0
    paused = "not reverted: 1 SKU(s): it was paused when removed: re-adding makes it active"
    assert paused in human.stdout
    stack.wait_for_job(int(human.stdout.split(":")[0].split()[1]))


def test_a_dry_run_reads_and_describes_but_never_writes(stack: Stack, tmp_path: Path) -> None:
    base = next(_bases)
    stack.control.load(shop.scenario(base))  # also empties the request log
    stack.start_worker(concurrency=2)
    state = stack.control.state()
    result = stack.cli("dry-run", str(write_csv(shop.rows(base), tmp_path / "n.csv")), "--json")
    assert result.returncode == 3, result.stderr  # some SKUs would fail
    report = as_json(result)
    assert report["dry_run"] is True
    said = {i["sku_id"]: i["description"] for i in report["items"]}
    assert said["p1"] == "would change from bid 1.00 to bid 1.50"
    assert said["p2"].startswith("would fail: guardrail")
    # The API's own refusals (below a minimum bid) cannot be foreseen: `cheap` would change.
    assert report["counts"] == {"succeeded": 9, "unchanged": 1, "failed": 3}

    log = stack.control.requests(limit=100_000)["log"]
    assert {entry["endpoint"] for entry in log} == {"token", "get"}
    assert stack.control.state() == state

    human = run(stack, "dry-run", str(tmp_path / "n.csv"), COLUMNS="200")
    assert "would change from active to paused" in human.stdout
    assert {e["endpoint"] for e in stack.control.requests(limit=100_000)["log"]} == {
        "token",
        "get",
    }


def test_list_items_watch_and_status_for_scripts(stack: Stack, tmp_path: Path) -> None:
    _, job_id = night(stack, tmp_path, "--submitted-by", "night-ops")
    listed = as_json(stack.cli("list", "--json", "--limit", "1", check=True))
    assert listed["jobs"][0]["id"] == job_id
    assert listed["next_cursor"]
    mine = as_json(stack.cli("list", "--json", "--submitted-by", "night-ops", check=True))
    assert [j["id"] for j in mine["jobs"]] == [job_id]
    watched = stack.cli("watch", str(job_id), "--json")
    assert watched.returncode == 3  # finished with failed SKUs
    assert json.loads(watched.stdout.splitlines()[-1])["status"] == "completed_with_failures"
    items = as_json(stack.cli("items", str(job_id), "--json", "--error-kind", "guardrail"))
    assert [i["sku_id"] for i in items] == ["p2"]
    assert stack.cli("items", str(job_id), "--status", "nope").returncode == 2
    assert stack.cli("items", "999999999").returncode == 5
    assert stack.cli("watch", "999999999").returncode == 5
    table = stack.cli("list", "--status", "completed_with_failures")
    assert str(job_id) in table.stdout


def test_doctor_gives_a_verdict_for_each_check(stack: Stack, tmp_path: Path) -> None:
    base = next(_bases)
    stack.control.load(shop.scenario(base))
    stack.start_worker()  # doctor checks that workers answer and sweep

    def healthy() -> subprocess.CompletedProcess[str] | None:
        result = stack.cli("doctor", "--line-item", str(base), "--json")
        return result if result.returncode == 0 else None

    result = until(healthy, 60, "a worker answering doctor")
    verdicts = {c["name"]: c["verdict"] for c in as_json(result)["checks"]}
    assert verdicts == {
        "configuration": "ok",
        "database": "ok",
        "migrations": "ok",
        "redis": "ok",
        "workers": "ok",
        "sweep": "ok",
        "queue": "ok",
        "token": "ok",
        "read": "ok",
        "manage": "ok",
    }
    # The probe write changed nothing.
    assert shop.products(stack.control.state(), base) == shop.initial(base)

    def doctor(**env: str) -> subprocess.CompletedProcess[str]:
        return run(stack, "doctor", "--line-item", str(base), "--json", **env)

    readonly = doctor(
        CRITEO_CLIENT_ID=READONLY_CLIENT_ID, CRITEO_CLIENT_SECRET=READONLY_CLIENT_SECRET
    )
    assert readonly.returncode == 7
    checks = {c["name"]: c for c in as_json(readonly)["checks"]}
    assert checks["read"]["verdict"] == "ok"
    assert checks["manage"]["verdict"] == "fail"
    assert "read-only" in checks["manage"]["fix"]

    wrong = doctor(CRITEO_CLIENT_SECRET="wrong")
    checks = {c["name"]: c for c in as_json(wrong)["checks"]}
    assert wrong.returncode == 7
    assert checks["token"]["verdict"] == "fail"
    assert checks["read"]["verdict"] == "skipped"
