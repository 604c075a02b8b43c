"""A small hand-made scenario with one SKU per case a retry, a revert or a dry run must handle,
and the job rows that exercise them. `base` keeps line item ids apart between tests that share
a database (chunks of one line item run in submission order across jobs)."""

from __future__ import annotations

from decimal import Decimal

from worker.simulator.scenario import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    READONLY_CLIENT_ID,
    READONLY_CLIENT_SECRET,
    AccountSpec,
    CatalogEntry,
    ClientSpec,
    LineItemSpec,
    ProductSpec,
    Scenario,
)

ACCOUNT = "900"
FORMULA_SKU = "=HYPERLINK(1)"
SKUS = [f"p{n}" for n in range(1, 11)] + ["cheap", "keep", FORMULA_SKU]
PRODUCTS = {
    "p1": ("1.00", "active"),
    "p2": ("1.00", "active"),
    "p3": (None, "active"),
    "p4": ("0.60", "paused"),
    "p5": ("0.60", "active"),
    "p6": ("0.70", "active"),
    "p7": ("0.70", "paused"),
    "p8": ("0.40", "active"),
    "cheap": ("0.60", "active"),
    "keep": ("0.50", "active"),
    FORMULA_SKU: ("0.50", "active"),
}
# sku: (action, bid, outcome, error kind)
CHANGES = {
    "p1": ("set_bid", "1.50", "succeeded", None),
    "p2": ("set_bid", "9.00", "failed", "guardrail"),  # 9 times the current bid
    "p3": ("set_bid", "0.80", "succeeded", None),  # had no bid override: reverted by clear_bid
    "p4": ("unpause", "", "succeeded", None),
    "p5": ("pause", "", "succeeded", None),
    "p6": ("remove", "", "succeeded", None),
    "p7": ("remove", "", "succeeded", None),  # was paused: not revertible
    "p8": ("set_bid", "0.40", "unchanged", None),
    "cheap": ("set_bid", "0.30", "failed", "validation"),  # below its minimum bid
    "p9": ("add", "0.45", "succeeded", None),
    "p10": ("set_bid", "0.50", "failed", "not_on_line_item"),
    FORMULA_SKU: ("set_bid", "0.60", "succeeded", None),
}
MISSING = ("ghost", "set_bid", "0.50", "failed", "line_item_not_found")
NOT_REVERTIBLE = {"p7": "removed_while_paused"}


def scenario(base: int) -> Scenario:
    return Scenario(
        clients=[
            ClientSpec(
                client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET, accounts=[ACCOUNT]
            ),
            ClientSpec(
                client_id=READONLY_CLIENT_ID,
                client_secret=READONLY_CLIENT_SECRET,
                accounts=[ACCOUNT],
                scope="read",
            ),
        ],
        accounts=[
            AccountSpec(
                id=ACCOUNT,
                catalog=[
                    CatalogEntry(sku=s, minBid=Decimal("0.50" if s == "cheap" else "0.20"))
                    for s in SKUS
                ],
                line_items=[
                    LineItemSpec(
                        id=base,
                        products=[
                            ProductSpec(
                                sku=s,
                                bidOverride=Decimal(b) if b else None,
                                status=st,
                            )
                            for s, (b, st) in PRODUCTS.items()
                        ],
                    )
                ],
            )
        ],
    )


def rows(base: int) -> list[dict[str, str]]:
    out = [
        {"line_item_id": str(base), "sku_id": s, "action": a, "bid_override": b, "account_id": ""}
        for s, (a, b, _, _) in CHANGES.items()
    ]
    sku, action, bid, _, _ = MISSING
    out.append(
        {
            "line_item_id": str(base + 1),
            "sku_id": sku,
            "action": action,
            "bid_override": bid,
            "account_id": "",
        }
    )
    return out


def expected(base: int) -> dict[tuple[int, str], tuple[str, str | None]]:
    got = {(base, s): (o, k) for s, (_, _, o, k) in CHANGES.items()}
    got[(base + 1, MISSING[0])] = (MISSING[3], MISSING[4])
    return got


def products(state: dict[str, object], line_item_id: int) -> dict[str, tuple[Decimal | None, str]]:
    """SKU → (bid, status) of a line item in a `/_sim/state` answer."""
    found: dict[str, tuple[Decimal | None, str]] = {}
    for account in state["accounts"]:  # type: ignore[attr-defined]
        for li in account["line_items"]:
            if li["id"] == line_item_id:
                for p in li["products"]:
                    bid = p["bidOverride"]
                    found[p["sku"]] = (None if bid is None else Decimal(str(bid)), p["status"])
    return found


def initial(base: int) -> dict[str, tuple[Decimal | None, str]]:
    return {s: (Decimal(b) if b else None, st) for s, (b, st) in PRODUCTS.items()}
