"""A realistic sample repricing job for a simulator scenario: the demo's job and the tests' input.

Deterministic for a seed. Mixes all five actions, SKUs already in their target state, and rows
the API will refuse (bid below minBid, SKU not in the catalog, a bid on a preferred-deals line
item, a line item that does not exist), as a night of real repricing would.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from worker.simulator.scenario import Scenario

COLUMNS = ["line_item_id", "sku_id", "action", "bid_override", "account_id"]
MISSING_LINE_ITEM_ID = 9_000_000_000_000_000_001


def sample_rows(
    scenario: Scenario, seed: int = 1, *, with_refusals: bool = True
) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []

    def row(li: int, sku: str, action: str, bid: Decimal | None, account: str) -> None:
        rows.append(
            {
                "line_item_id": str(li),
                "sku_id": sku,
                "action": action,
                "bid_override": "" if bid is None else f"{bid:.2f}",
                "account_id": account,
            }
        )

    for account in scenario.accounts:
        min_bid = {c.sku: c.minBid for c in account.catalog}
        for n, li in enumerate(account.line_items):
            auction = li.kind == "auction"
            on_line_item = {p.sku for p in li.products}
            products = list(li.products)
            rng.shuffle(products)
            removable = max(0, len(products) - 1)
            for p in products:
                r = rng.random()
                if r < 0.55 and auction:
                    same = p.bidOverride is not None and rng.random() < 0.1
                    bid = (
                        p.bidOverride
                        if same
                        else min_bid[p.sku] + Decimal(rng.randrange(0, 150)) / 100
                    )
                    row(li.id, p.sku, "set_bid", bid, account.id)
                elif r < 0.65:
                    row(li.id, p.sku, "pause", None, account.id)
                elif r < 0.75:
                    row(li.id, p.sku, "unpause", None, account.id)
                elif r < 0.78 and removable:
                    removable -= 1
                    row(li.id, p.sku, "remove", None, account.id)
            addable = [c for c in account.catalog if c.sku not in on_line_item]
            added = rng.sample(addable, min(2, len(addable)))
            absent = [c for c in addable if c not in added]
            for entry in added:
                bid = entry.minBid + Decimal("0.05") if auction else None
                row(li.id, entry.sku, "add", bid, account.id)
            if not with_refusals:
                continue
            if auction and n % 3 == 0 and li.products:
                p = li.products[0]
                too_low = max(Decimal("0"), min_bid[p.sku] - Decimal("0.05"))
                _replace(rows, li.id, p.sku, "set_bid", too_low, account.id)
            if n % 4 == 1:
                row(li.id, f"not-in-catalog-{li.id % 10_000}", "add", None, account.id)
            if not auction and li.products:
                _replace(rows, li.id, li.products[-1].sku, "set_bid", Decimal("1.00"), account.id)
            if n % 5 == 2 and absent:
                row(li.id, absent[-1].sku, "set_bid", Decimal("1.00"), account.id)
    if with_refusals:
        for k in range(3):
            row(MISSING_LINE_ITEM_ID, f"ghost-{k}", "set_bid", Decimal("0.50"), "")
    return rows


def _replace(
    rows: list[dict[str, str]], li: int, sku: str, action: str, bid: Decimal, account: str
) -> None:
    """Make (li, sku) carry this action, replacing the row already there if any."""
    key = (str(li), sku)
    rows[:] = [r for r in rows if (r["line_item_id"], r["sku_id"]) != key]
    rows.append(
        {
            "line_item_id": str(li),
            "sku_id": sku,
            "action": action,
            "bid_override": f"{bid:.2f}",
            "account_id": account,
        }
    )


def write_csv(rows: Iterable[dict[str, str]], path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path
