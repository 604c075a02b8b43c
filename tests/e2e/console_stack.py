"""A real console for browser tests: `promobulk api` (API and console) and a `promobulk worker`
as processes, the simulator, API keys of each role, and Debian's Chromium driven by Playwright.

Without Chromium (or Playwright) the browser tests are skipped with one reason, printed in
pytest's header; `.ci/run` installs Chromium, so CI always runs them.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Stack
from worker.simulator.scenario import Scenario

CHROMIUM = Path(os.environ.get("PROMOBULK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = Path(__file__).parent / "assets" / "axe.min.js"
DOCS = Path(__file__).parents[2] / "docs"
CONSOLE_SECRET = "console-e2e-secret-0123456789abcdef"


def why_no_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (scripts/setup installs it)"
    return None


@dataclass
class Console:
    url: str
    stack: Stack
    keys: dict[str, str]
    shots: Path
    problems: list[str] = field(default_factory=list)

    def job(self, job_id: int) -> dict[str, Any]:
        return self.stack.status(job_id)


def start_console(stack: Stack, shots: Path) -> Iterator[Console]:
    stack.env["PROMOBULK_CONSOLE_SECRET"] = CONSOLE_SECRET
    keys = {}
    for name, role in (
        ("ops-lead", "operate"),
        ("night-watch", "read"),
        ("pricing", "submit"),
        ("other-team", "submit"),
    ):
        created = stack.cli("api-key", "create", name, "--role", role, "--json", check=True)
        keys[name] = json.loads(created.stdout)["key"]
    url = stack.start_api()
    stack.start_worker(concurrency=2)
    yield Console(url, stack, keys, shots)


def night_rows(scenario: Scenario, line_items: int) -> tuple[list[dict[str, str]], dict[str, int]]:
    """A night's set_bid rows over the first line items of the first account: most succeed,
    some bids are below the SKU's minimum or name a SKU not in the catalog (the API refuses:
    `validation`), and some move a bid more than 3 times (`guardrail`). Returns the rows and
    how many fail each way."""
    account = scenario.accounts[0]
    minimum = {c.sku: c.minBid for c in account.catalog}
    rows: list[dict[str, str]] = []
    failing = {"validation": 0, "guardrail": 0}
    auction = [li for li in account.line_items if li.kind == "auction"][:line_items]
    for li in auction:
        for n, product in enumerate(li.products):
            low = minimum[product.sku]
            current = product.bidOverride
            if n % 9 == 4:
                bid, failing["validation"] = low / 2, failing["validation"] + 1
            elif n % 9 == 7 and current:
                bid, failing["guardrail"] = current * 5 + low, failing["guardrail"] + 1
            else:
                bid = max(low, (current or low)) + Decimal("0.05")
            rows.append(_row(li.id, product.sku, "set_bid", bid))
        rows.append(_row(li.id, f"not-in-catalog-{li.id}", "add", None))
        failing["validation"] += 1
    return rows, failing


def _row(line_item: int, sku: str, action: str, bid: Decimal | None) -> dict[str, str]:
    return {
        "line_item_id": str(line_item),
        "sku_id": sku,
        "action": action,
        "bid_override": "" if bid is None else f"{bid:.2f}",
    }


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, ["line_item_id", "sku_id", "action", "bid_override"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def keep_screenshot(shot: Path, name: str) -> None:
    """With PROMOBULK_SCREENSHOTS=docs, the tests' screenshots replace those in docs/."""
    if os.environ.get("PROMOBULK_SCREENSHOTS") == "docs":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS / name)
