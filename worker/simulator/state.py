"""The simulated data and the promoted-products rules, as pure functions (no I/O, no clock).

Every rule looks at one request item at a time, so a write costs O(request size) whatever the
size of the scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from worker.simulator.scenario import ClientSpec, Scenario

Action = Literal["append", "delete", "pause", "unpause"]

# Codes of the validation problems Criteo does not publish (see docs/simulator.md).
NOT_IN_CATALOG = "product-not-in-catalog"
BELOW_MIN_BID = "bid-override-below-min-bid"
BID_NOT_ALLOWED = "bid-override-not-allowed"
CAP_EXCEEDED = "products-cap-exceeded"
CANNOT_BE_EMPTY = "line-item-cannot-be-empty"
INVALID_ATTRIBUTES = "invalid-attributes"
NOT_ON_LINE_ITEM = "product-not-on-line-item"

#: Title, the detail of a problem that names no SKU and stands for several (modes b and d),
#: and the detail of one that names none and stands for one item.
_TEXTS: dict[str, tuple[str, str, str]] = {
    NOT_IN_CATALOG: (
        "Product not in catalog",
        "products are not in the account catalog",
        "The product is not in the account catalog",
    ),
    BELOW_MIN_BID: (
        "Bid override below min bid",
        "bid overrides are below the min bid",
        "The bid override is below the min bid",
    ),
    BID_NOT_ALLOWED: (
        "Bid override not allowed",
        "bid overrides were given on a preferred-deals line item",
        "A bid override was given on a preferred-deals line item",
    ),
    CAP_EXCEEDED: (
        "Too many products",
        "products would exceed the products cap",
        "The product would exceed the products cap",
    ),
    CANNOT_BE_EMPTY: (
        "Line item cannot be empty",
        "deletions would leave the line item empty",
        "The deletion would leave the line item empty",
    ),
    INVALID_ATTRIBUTES: (
        "Invalid attributes",
        "items have invalid attributes",
        "The item has invalid attributes",
    ),
    NOT_ON_LINE_ITEM: (
        "Product not on line item",
        "products are not on the line item",
        "The product is not on the line item",
    ),
}


@dataclass(slots=True)
class Product:
    sku: str
    bid: Decimal | None
    status: str


@dataclass(slots=True)
class LineItem:
    id: int
    account_id: str
    kind: str
    products: dict[str, Product] = field(default_factory=dict)


@dataclass(slots=True)
class ItemProblem:
    """A validation problem of one request item: `field` is what its JSON path points at,
    `detail` names the SKU in single quotes (`sku` is "" for an item without a valid id)."""

    index: int
    code: str
    field: str
    detail: str
    sku: str = ""

    @property
    def title(self) -> str:
        return _TEXTS[self.code][0]

    @property
    def unnamed_detail(self) -> str:
        """The detail of this problem when it must not name its SKU."""
        return _TEXTS[self.code][2]


def anonymous_detail(code: str, count: int | None) -> str:
    """The detail of a problem naming no SKU that stands for `count` items (modes b and d);
    without a count, the plural sentence alone."""
    plural = _TEXTS[code][1]
    return f"{count} {plural}" if count is not None else plural[0].upper() + plural[1:]


class SimState:
    """Clients, catalogs and line items, indexed for O(1) lookups."""

    def __init__(self, scenario: Scenario) -> None:
        self.clients: dict[str, ClientSpec] = {c.client_id: c for c in scenario.clients}
        self.consents: dict[str, frozenset[str]] = {
            c.client_id: frozenset(c.accounts) for c in scenario.clients
        }
        self.catalogs: dict[str, dict[str, Decimal]] = {}
        self.line_items: dict[int, LineItem] = {}
        for account in scenario.accounts:
            self.catalogs[account.id] = {entry.sku: entry.minBid for entry in account.catalog}
            for spec in account.line_items:
                self.line_items[spec.id] = LineItem(
                    id=spec.id,
                    account_id=account.id,
                    kind=spec.kind,
                    products={
                        p.sku: Product(p.sku, p.bidOverride, p.status) for p in spec.products
                    },
                )

    def snapshot(self, line_item_id: int | None = None) -> dict[str, Any]:
        """The current state in the scenario file format; one line item, without catalogs, when
        asked. Built as plain dicts: a 200,000-product state dumps in well under a second."""
        if line_item_id is None:
            items: list[LineItem] = list(self.line_items.values())
        else:
            one = self.line_items.get(line_item_id)
            items = [one] if one is not None else []
        accounts: dict[str, dict[str, Any]] = {}
        for account_id, catalog in self.catalogs.items():
            if line_item_id is not None and all(li.account_id != account_id for li in items):
                continue
            accounts[account_id] = {
                "id": account_id,
                "catalog": []
                if line_item_id is not None
                else [{"sku": sku, "minBid": float(min_bid)} for sku, min_bid in catalog.items()],
                "line_items": [],
            }
        for li in items:
            accounts[li.account_id]["line_items"].append(
                {
                    "id": li.id,
                    "kind": li.kind,
                    "products": [
                        {
                            "sku": p.sku,
                            "bidOverride": None if p.bid is None else float(p.bid),
                            "status": p.status,
                        }
                        for p in li.products.values()
                    ],
                }
            )
        return {
            "clients": [c.model_dump(mode="json") for c in self.clients.values()],
            "accounts": list(accounts.values()),
        }


def _parse_bid(value: Any) -> Decimal | None:
    """A bid as an exact decimal; numbers and numeric strings are accepted (the seed sends both)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(value)
    try:
        bid = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(value) from exc
    if not bid.is_finite() or bid < 0:
        raise ValueError(value)
    return bid


@dataclass(slots=True)
class _Item:
    index: int
    sku: str
    attributes: dict[str, Any]


def _items(data: list[Any], problems: list[ItemProblem]) -> list[_Item]:
    """The well-formed items; a malformed one becomes an `invalid-attributes` problem on `id`."""
    items = []
    for index, raw in enumerate(data):
        sku = raw.get("id") if isinstance(raw, dict) else None
        attributes = raw.get("attributes") if isinstance(raw, dict) else None
        if not isinstance(sku, str) or not sku or not isinstance(attributes, dict | None):
            problems.append(
                ItemProblem(index, INVALID_ATTRIBUTES, "id", f"Item {index} has no valid id")
            )
            continue
        items.append(_Item(index, sku, attributes or {}))
    return items


def apply_write(
    state: SimState,
    line_item: LineItem,
    action: Action,
    data: list[Any],
    *,
    cap: int,
    all_or_nothing: bool,
    ignore_bid_updates: bool = False,
) -> list[ItemProblem]:
    """Validate `data` against the rules and apply it; returns the problems, one per bad item.

    With `all_or_nothing` (modes a and b) nothing is applied when any item has a problem;
    otherwise the valid items are applied (modes c and d).
    """
    problems: list[ItemProblem] = []
    items = _items(data, problems)
    if action == "append":
        ops = _check_append(state, line_item, items, cap, problems)
    elif action == "delete":
        ops = _check_delete(line_item, items, problems)
    else:
        ops = _check_status(line_item, items, problems)
    if problems and all_or_nothing:
        return problems
    _apply(line_item, action, ops, ignore_bid_updates)
    return problems


Op = tuple[str, bool, Decimal | None]  # sku, bid given, bid


def _check_append(
    state: SimState, li: LineItem, items: list[_Item], cap: int, problems: list[ItemProblem]
) -> list[Op]:
    catalog = state.catalogs.get(li.account_id, {})
    count = len(li.products)
    added: set[str] = set()
    ops: list[Op] = []
    for item in items:
        sku, attributes = item.sku, item.attributes
        unknown = sorted(set(attributes) - {"id", "bidOverride"})
        if unknown:
            problems.append(
                ItemProblem(
                    item.index,
                    INVALID_ATTRIBUTES,
                    unknown[0],
                    f"SKU '{sku}' has attribute '{unknown[0]}', not allowed on append",
                    item.sku,
                )
            )
            continue
        try:
            bid = _parse_bid(attributes.get("bidOverride"))
        except ValueError:
            problems.append(
                ItemProblem(
                    item.index,
                    INVALID_ATTRIBUTES,
                    "bidOverride",
                    f"SKU '{sku}' has a bid override that is not a valid amount",
                    item.sku,
                )
            )
            continue
        if bid == 0:
            bid = None  # "0.0 will remove a bidOverride" (promoted-products guide, v2025.10)
        min_bid = catalog.get(sku)
        if min_bid is None:
            problems.append(
                ItemProblem(
                    item.index,
                    NOT_IN_CATALOG,
                    "id",
                    f"SKU '{sku}' is not in the catalog of account '{li.account_id}'",
                    item.sku,
                )
            )
            continue
        if bid is not None and li.kind == "preferred_deals":
            problems.append(
                ItemProblem(
                    item.index,
                    BID_NOT_ALLOWED,
                    "bidOverride",
                    f"SKU '{sku}' cannot have a bid override on preferred-deals line item {li.id}",
                    item.sku,
                )
            )
            continue
        if bid is not None and bid < min_bid:
            problems.append(
                ItemProblem(
                    item.index,
                    BELOW_MIN_BID,
                    "bidOverride",
                    f"SKU '{sku}' has a bid override {bid} below its min bid {min_bid}",
                    item.sku,
                )
            )
            continue
        if sku not in li.products and sku not in added:
            if count >= cap:
                problems.append(
                    ItemProblem(
                        item.index,
                        CAP_EXCEEDED,
                        "id",
                        f"SKU '{sku}' cannot be added: line item {li.id} is capped at {cap}",
                        item.sku,
                    )
                )
                continue
            count += 1
            added.add(sku)
        ops.append((sku, "bidOverride" in attributes, bid))
    return ops


def _check_delete(li: LineItem, items: list[_Item], problems: list[ItemProblem]) -> list[Op]:
    remaining = len(li.products)
    deleting: set[str] = set()
    ops: list[Op] = []
    for item in items:
        if item.sku not in li.products or item.sku in deleting:
            continue  # deleting an absent product is a no-op: the state asked for already holds
        if remaining == 1:
            problems.append(
                ItemProblem(
                    item.index,
                    CANNOT_BE_EMPTY,
                    "id",
                    f"SKU '{item.sku}' cannot be deleted: line item {li.id} must keep a product",
                )
            )
            continue
        remaining -= 1
        deleting.add(item.sku)
        ops.append((item.sku, False, None))
    return ops


def _check_status(li: LineItem, items: list[_Item], problems: list[ItemProblem]) -> list[Op]:
    ops: list[Op] = []
    for item in items:
        forbidden = sorted(set(item.attributes) & {"bidOverride", "status"})
        if forbidden:
            problems.append(
                ItemProblem(
                    item.index,
                    INVALID_ATTRIBUTES,
                    forbidden[0],
                    f"SKU '{item.sku}' has attribute '{forbidden[0]}', not allowed here",
                )
            )
            continue
        if item.sku not in li.products:
            problems.append(
                ItemProblem(
                    item.index,
                    NOT_ON_LINE_ITEM,
                    "id",
                    f"SKU '{item.sku}' is not on line item {li.id}",
                )
            )
            continue
        ops.append((item.sku, False, None))
    return ops


def _apply(li: LineItem, action: Action, ops: list[Op], ignore_bid_updates: bool) -> None:
    products = li.products
    for sku, bid_given, bid in ops:
        if action == "append":
            existing = products.get(sku)
            if existing is None:
                products[sku] = Product(sku, bid, "active")
            elif bid_given and not ignore_bid_updates:
                existing.bid = bid
        elif action == "delete":
            del products[sku]
        else:
            products[sku].status = "paused" if action == "pause" else "active"
