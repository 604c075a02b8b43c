"""The operations console in a real browser: Debian's Chromium driven by Playwright against
`promobulk api` and `promobulk worker` processes and the simulator. Every test also checks that
no page answered 5xx and that the browser logged no error."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import until
from tests.e2e.conftest import make_stack
from tests.e2e.console_stack import (
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    Console,
    keep_screenshot,
    night_rows,
    start_console,
    why_no_browser,
    write_csv,
)
from worker.simulator.scenario import generate

# A start far enough ahead that nothing runs during the test, inside the not_before window.
LATER = (datetime.now(UTC) + timedelta(days=300)).isoformat()

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(why_no_browser() is not None, reason=why_no_browser() or ""),
]
SCENARIO = generate(seed=77, line_items=12, skus_per_line_item=18)
SLOW = {"*": {"latency": {"distribution": "constant", "ms": 0}}}


@pytest.fixture(scope="module")
def console(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    with make_stack(database_url, redis_url, tmp) as stack:
        stack.control.load(SCENARIO)
        yield from start_console(stack, tmp)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _watch(page: Any, problems: list[str]) -> None:
    """Collect what must never happen: a script error, a 5xx, a sub-resource (script, style,
    fragment) that failed. Chromium also logs a page answered 4xx on purpose (a refused form, a
    job that is not yours) as "Failed to load resource"; those statuses are asserted by the
    tests themselves."""

    def console_message(message: Any) -> None:
        if message.type != "error":
            return
        documents = {r.url for r in answers if r.request.resource_type == "document"}
        if message.text.startswith("Failed to load resource") and (
            message.location.get("url") in documents
        ):
            return
        problems.append(f"console: {message.text}")

    answers: list[Any] = []

    def response(answer: Any) -> None:
        answers.append(answer)
        failed_part = answer.status >= 400 and answer.request.resource_type != "document"
        if answer.status >= 500 or failed_part:
            problems.append(f"{answer.status} {answer.request.method} {answer.url}")

    page.on("console", console_message)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("response", response)


@pytest.fixture
def open_as(console: Console, browser: Any) -> Iterator[Any]:
    """`open_as(key_name, width=1280)`: a signed-in page in a fresh browser context."""
    contexts: list[Any] = []
    problems: list[str] = []

    def sign_in(name: str, width: int = 1280) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": 900}, timezone_id="America/New_York"
        )
        contexts.append(context)
        page = context.new_page()
        _watch(page, problems)
        page.goto(console.url + "/")
        assert "/sign-in" in page.url
        page.fill("#key", console.keys[name])
        page.click("button[type=submit]")
        page.wait_for_url(console.url + "/")
        return page

    yield sign_in
    for context in contexts:
        context.close()
    assert not problems, problems


def _submit(console: Console, rows: list[dict[str, str]], name: str, *args: str) -> int:
    path = write_csv(console.shots / f"{name}.csv", rows)
    return console.stack.submit(path, "--submitted-by", "pricing", *args)


def _axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is (WCAG 2.1 A and AA rules)."""
    page.evaluate(AXE.read_text())
    result: dict[str, Any] = page.evaluate(
        "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']})"
    )
    return [
        {"id": v["id"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
    ]


def _shot(console: Console, page: Any, name: str) -> Path:
    path = console.shots / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    keep_screenshot(path, name)
    return path


def test_sign_in_is_needed_and_a_wrong_key_is_refused(console: Console, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(console.url + "/jobs/1")
    assert page.url.startswith(console.url + "/sign-in?next=")
    assert not _axe(page)
    page.fill("#key", "pbk_not-a-key")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "That key is unknown or has been revoked."
    cookies = {c["name"]: c for c in context.cookies()}
    assert "promobulk_session" not in cookies
    page.fill("#key", console.keys["night-watch"])
    page.click("button[type=submit]")
    page.wait_for_url(console.url + "/jobs/1")  # back where it was going
    session = next(c for c in context.cookies() if c["name"] == "promobulk_session")
    assert session["httpOnly"]
    assert session["sameSite"] == "Strict"
    assert console.keys["night-watch"] not in str(context.cookies())
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/sign-in$"))
    page.goto(console.url + "/")
    assert "/sign-in" in page.url
    context.close()


def test_a_job_progresses_live_its_failures_are_filtered_retried_and_reverted(
    console: Console, open_as: Any
) -> None:
    rows, failing = night_rows(SCENARIO, line_items=10)
    console.stack.control.configure(
        faults={"*": {"latency": {"distribution": "constant", "ms": 600}}}
    )
    try:
        job_id = _submit(console, rows, "night")
        page = open_as("ops-lead")
        page.goto(f"{console.url}/jobs/{job_id}")
        page.evaluate("window.loadedOnce = true")
        done = page.locator("#job-live .big .num").first
        seen: set[int] = set()

        def finished() -> bool:
            seen.add(int(done.inner_text().replace(",", "")))
            return len(rows) in seen

        until(finished, 90, "the job to end on the page")
        assert any(0 < n < len(rows) for n in seen), seen  # seen while it ran
        page.locator("h1 .badge", has_text="with failures").wait_for()
        assert page.evaluate("window.loadedOnce") is True  # updated in place, never reloaded
    finally:
        console.stack.control.configure(faults=SLOW)
    # The failures, grouped, then shown in the SKU table by kind.
    failures = page.locator("table.failures tbody tr")
    kinds = {failures.nth(i).locator(".kind").inner_text() for i in range(failures.count())}
    assert kinds == {"validation", "guardrail"}
    validation = sum(
        g["count"] for g in console.job(job_id)["failures"] if g["error_kind"] == "validation"
    )
    assert validation >= failing["validation"] // 2
    page.select_option("#s-kind", "validation")
    page.click("#skus button[type=submit]")
    page.wait_for_url(re.compile(r".*error_kind=validation.*"))
    page.locator("#skus .muted", has_text=f"{validation} matching").wait_for()
    cells = page.locator("table.skus tbody td .kind")
    assert cells.count() == validation
    assert set(cells.all_inner_texts()) == {"validation"}
    page.goto(f"{console.url}/jobs/{job_id}?status=failed")
    assert not _axe(page)
    _shot(console, page, "console-job.png")
    # Retry the validation failures, with the count said before.
    page.goto(f"{console.url}/jobs/{job_id}/retry?error_kind=validation")
    assert page.locator("[data-retry-count]").inner_text() == str(validation)
    assert not _axe(page)
    page.uncheck("#k-validation")
    assert page.locator("[data-retry-count]").inner_text() == "0"
    assert page.locator("form[data-retry] button[type=submit]").is_disabled()
    page.check("#k-validation")
    page.get_by_role("button", name="Create the retry job").click()
    page.wait_for_url(re.compile(r".*/jobs/\d+$"))
    child = int(page.url.rsplit("/", 1)[1])
    assert child != job_id
    page.locator("h1 .badge", has_text="failed").wait_for(timeout=60_000)  # they fail again
    assert console.job(child)["total"] == validation
    assert page.locator(".sub .origin").inner_text() == f"retry of #{job_id}"
    # Revert the parent: what it restores and what it leaves out are said first.
    page.goto(f"{console.url}/jobs/{job_id}/revert")
    said = re.search(r"before-state of ([\d,]+) SKUs", page.locator(".what").inner_text())
    assert said is not None
    restored = int(said.group(1).replace(",", ""))
    changed = console.job(job_id)["counts"]["succeeded"]
    if restored < changed:  # SKUs with no bid override before cannot be put back
        assert "bid_was_none" in page.locator("table.skipped").inner_text()
    page.get_by_role("button", name=re.compile("Create the revert job")).click()
    page.wait_for_url(re.compile(r".*/jobs/\d+$"))
    page.locator("h1 .badge", has_text="succeeded").wait_for(timeout=60_000)
    reverted = console.job(int(page.url.rsplit("/", 1)[1]))
    assert reverted["derived_reason"] == "revert"
    assert reverted["total"] == restored
    # A SKU's history shows the night and its revert, newest first.
    page.locator("table.skus td.sku a").first.click()
    page.wait_for_url(re.compile(r".*/history\?.*"))
    jobs_shown = page.locator("table.history tbody td.num a").all_inner_texts()
    assert jobs_shown == [f"#{reverted['id']}", f"#{job_id}"]
    assert not _axe(page)


def test_a_running_job_is_cancelled(console: Console, open_as: Any) -> None:
    # Every line item, two worker slots and slow calls: chunks are still waiting, never
    # started, when the cancel lands, however slow the browser is (SKUs already sent are
    # settled with what the API did, so only those make `cancelled`).
    rows, _ = night_rows(SCENARIO, line_items=len(SCENARIO.accounts[0].line_items))
    console.stack.control.configure(
        faults={"*": {"latency": {"distribution": "constant", "ms": 3000}}}
    )
    try:
        job_id = _submit(console, rows, "to-cancel")
        console.stack.wait_for_progress(job_id, 1)
        page = open_as("ops-lead")
        page.goto(f"{console.url}/jobs/{job_id}")
        page.click(f"a[href='/jobs/{job_id}/cancel']")
        assert "not processed yet will be marked" in page.locator(".what").inner_text()
        page.get_by_role("button", name=f"Cancel job #{job_id}").click()
        page.wait_for_url(f"{console.url}/jobs/{job_id}")
        page.locator("h1 .badge", has_text="cancelled").wait_for(timeout=60_000)
    finally:
        console.stack.control.configure(faults=SLOW)
    assert console.job(job_id)["counts"]["cancelled"] > 0


def test_a_bad_csv_shows_its_row_errors_and_stores_nothing(console: Console, open_as: Any) -> None:
    def job_ids() -> list[int]:
        listed = console.stack.cli("list", "--json", "--limit", "500", check=True).stdout
        return [j["id"] for j in json.loads(listed)["jobs"]]

    before = job_ids()
    page = open_as("pricing")
    page.get_by_role("link", name="New job").first.click()
    bad = console.shots / "bad.csv"
    bad.write_text(
        "line_item_id,sku_id,action,bid_override\n"
        "-4,sku-1,set_bid,0.5\n"
        "42,sku-2,set_bid,\n"
        "42,sku-3,jump,\n"
    )
    page.set_input_files("#n-file", str(bad))
    page.get_by_role("button", name="Check and submit").click()
    errors = page.locator("table.row-errors tbody tr")
    errors.first.wait_for()
    assert page.locator("#h-rejected").inner_text() == "Refused, nothing stored: 3 problems"
    assert [errors.nth(i).locator("td").first.inner_text() for i in range(3)] == ["1", "2", "3"]
    assert job_ids() == before
    assert not _axe(page)


def test_a_file_is_dry_run_then_run_for_real(console: Console, open_as: Any) -> None:
    rows, failing = night_rows(SCENARIO, line_items=2)
    path = write_csv(console.shots / "plan.csv", rows)
    page = open_as("pricing")
    page.goto(console.url + "/jobs/new")
    page.set_input_files("#n-file", str(path))
    assert page.is_checked("#n-dry")
    assert not _axe(page)
    _shot(console, page, "console-new-job.png")
    page.get_by_role("button", name="Check and submit").click()
    page.wait_for_url(re.compile(r".*/jobs/\d+$"))
    dry_run = int(page.url.rsplit("/", 1)[1])
    page.get_by_role("link", name="Run it for real…").wait_for(timeout=60_000)
    plan = console.job(dry_run)["counts"]
    planned = page.locator("table.counts")
    assert planned.locator("tr.failed td").inner_text() == str(plan["failed"])
    assert plan["failed"] >= failing["guardrail"]  # what only the API knows is not foreseen
    assert "would change" in planned.inner_text()
    page.get_by_role("link", name="Run it for real…").click()
    page.get_by_role("button", name=f"Run {len(rows)} SKU changes").click()
    page.wait_for_url(re.compile(r".*/jobs/\d+$"))
    real = console.job(int(page.url.rsplit("/", 1)[1]))
    assert real["parent_job_id"] == dry_run
    assert not real["dry_run"]
    page.locator("h1 .badge", has_text="with failures").wait_for(timeout=60_000)
    # The jobs page: both, newest first, and dry runs can be left out.
    page.goto(console.url + "/")
    assert page.locator("#job-rows tr").first.locator("a").first.inner_text() == f"#{real['id']}"
    page.select_option("#f-dry", "false")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*dry_run=false.*"))
    shown = page.locator("#job-rows td.job > a").all_inner_texts()
    assert f"#{real['id']}" in shown
    assert f"#{dry_run}" not in shown


def test_the_jobs_page_fits_a_laptop_and_passes_axe(console: Console, open_as: Any) -> None:
    rows, _ = night_rows(SCENARIO, line_items=1)
    _submit(console, rows, "small")
    page = open_as("ops-lead", width=1024)
    page.locator("#job-rows tr").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    assert not _axe(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    until(lambda: "waiting" in page.locator("#health").inner_text(), 20, "the health strip")
    assert "answering" in page.locator("#health").inner_text()
    _shot(console, page, "console-jobs.png")


def test_a_submit_key_sees_only_its_own_jobs(console: Console, open_as: Any) -> None:
    rows, _ = night_rows(SCENARIO, line_items=1)
    theirs = _submit(console, rows, "theirs")  # submitted by "pricing"
    page = open_as("other-team")
    assert f"#{theirs}" not in page.locator("#job-rows").inner_text()
    page.goto(f"{console.url}/jobs/{theirs}")
    assert page.locator("h1").inner_text() == "Not found"
    response = page.request.get(f"{console.url}/jobs/{theirs}/items.csv")
    assert response.status == 404
    history = page.request.get(
        f"{console.url}/history?line_item_id={rows[0]['line_item_id']}&sku_id={rows[0]['sku_id']}"
    )
    assert "No change recorded" in history.text()


def test_a_form_posted_without_its_csrf_token_is_refused(console: Console, open_as: Any) -> None:
    rows, _ = night_rows(SCENARIO, line_items=1)
    job_id = _submit(console, rows, "csrf", "--not-before", LATER)
    page = open_as("ops-lead")
    refused = page.request.post(f"{console.url}/jobs/{job_id}/cancel", form={"x": "1"})
    assert refused.status == 403
    assert "could not be checked" in refused.text()
    forged = page.request.post(f"{console.url}/jobs/{job_id}/cancel", form={"csrf_token": "forged"})
    assert forged.status == 403
    assert console.job(job_id)["status"] == "queued"
    page.goto(f"{console.url}/jobs/{job_id}/cancel")
    page.get_by_role("button", name=f"Cancel job #{job_id}").click()
    page.locator("h1 .badge", has_text="cancelled").wait_for()
