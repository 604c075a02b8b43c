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

from worker.simulator.scenario import CatalogEntry, LineItemSpec, Scenario

COLUMNS = ["line_item_id", "sku_id", "action", "bid_override", "account_id"]
MISSING_LINE_ITEM_ID = 9_000_000_000_000_000_001


def sample_rows(
    scenario: Scenario, seed: int = 1, *, with_refusals: bool = True
) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    for account in scenario.accounts:
        min_bid = {c.sku: c.minBid for c in account.catalog}
        for n, li in enumerate(account.line_items):
            auction = li.kind == "auction"
            _changes(rows, rng, li, min_bid, account.id)
            on_line_item = {p.sku for p in li.products}
            addable = [c for c in account.catalog if c.sku not in on_line_item]
            added = rng.sample(addable, min(2, len(addable)))
            for entry in added:
                bid = entry.minBid + Decimal("0.05") if auction else None
                _row(rows, li.id, entry.sku, "add", bid, account.id)
            if with_refusals:
                absent = [c for c in addable if c not in added]
                _refusals(rows, n, li, min_bid, absent, account.id)
    if with_refusals:
        for k in range(3):
            _row(rows, MISSING_LINE_ITEM_ID, f"ghost-{k}", "set_bid", Decimal("0.50"), "")
    return rows


def _row(
    rows: list[dict[str, str]], li: int, sku: str, action: str, bid: Decimal | None, account: str
) -> None:
    rows.append(
        {
            "line_item_id": str(li),
            "sku_id": sku,
            "action": action,
            "bid_override": "" if bid is None else f"{bid:.2f}",
            "account_id": account,
        }
    )


def _changes(
    rows: list[dict[str, str]],
    rng: random.Random,
    li: LineItemSpec,
    min_bid: dict[str, Decimal],
    account: str,
) -> None:
    """New bids for about half the products, pauses, unpauses and a few removals."""
    auction = li.kind == "auction"
    products = list(li.products)
    rng.shuffle(products)
    removable = max(0, len(products) - 1)
    for p in products:
        r = rng.random()
        if r < 0.55 and auction:
            same = p.bidOverride is not None and rng.random() < 0.1
            bid = p.bidOverride if same else min_bid[p.sku] + Decimal(rng.randrange(0, 150)) / 100
            _row(rows, li.id, p.sku, "set_bid", bid, account)
        elif r < 0.65:
            _row(rows, li.id, p.sku, "pause", None, account)
        elif r < 0.75:
            _row(rows, li.id, p.sku, "unpause", None, account)
        elif r < 0.78 and removable:
            removable -= 1
            _row(rows, li.id, p.sku, "remove", None, account)


def _refusals(
    rows: list[dict[str, str]],
    n: int,
    li: LineItemSpec,
    min_bid: dict[str, Decimal],
    absent: list[CatalogEntry],
    account: str,
) -> None:
    """Changes the API refuses, on some line items: a bid below the SKU's minimum, a SKU not in
    the catalog, a bid on a preferred-deals line item, a bid for a SKU not on the line item."""
    auction = li.kind == "auction"
    if auction and n % 3 == 0 and li.products:
        p = li.products[0]
        too_low = max(Decimal("0"), min_bid[p.sku] - Decimal("0.05"))
        _replace(rows, li.id, p.sku, "set_bid", too_low, account)
    if n % 4 == 1:
        _row(rows, li.id, f"not-in-catalog-{li.id % 10_000}", "add", None, account)
    if not auction and li.products:
        _replace(rows, li.id, li.products[-1].sku, "set_bid", Decimal("1.00"), account)
    if n % 5 == 2 and absent:
        _row(rows, li.id, absent[-1].sku, "set_bid", Decimal("1.00"), account)


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
