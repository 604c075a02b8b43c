"""What a job must do to a scenario, worked out from the API's rules alone (not from our planner).

Used to judge end-to-end runs: each SKU's expected outcome, the expected final state of every
line item, how many calls each line item may cost at most, and the fewest calls any client
could make against an API that behaves as the simulator was configured to (`Api`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from worker.simulator.scenario import Scenario

Key = tuple[int, str]
Product = tuple[Decimal | None, str]
MAX_CHANGE_RATIO = Decimal(3)  # the default guardrail: a bid changes at most 3 times either way
CALL_OF = {
    "set_bid": "append",
    "add": "append",
    "pause": "pause",
    "unpause": "unpause",
    "remove": "delete",
}


@dataclass(frozen=True)
class Api:
    """What the simulator was configured to do, as far as it changes the fewest calls.

    `page`: the most products one GET can answer (a page cap, or the largest `limit` taken);
    `counted`: pages carry `meta.count` (else the last page must be seen short); `ids_cap`: the
    most ids one write may carry; `proves_bids`: an append answers with a body (not a 204)."""

    mode: str = "a"
    page: int | None = None
    counted: bool = True
    ids_cap: int | None = None
    proves_bids: bool = True

    def reads(self, products: int) -> int:
        """GETs to read a line item of this many products to its end."""
        if self.page is None:
            return 1
        return max(1, math.ceil((products + (0 if self.counted else 1)) / self.page))

    def writes(self, skus: int) -> int:
        return math.ceil(skus / self.ids_cap) if self.ids_cap else 1


@dataclass
class Expectation:
    outcomes: dict[Key, tuple[str, str | None]] = field(default_factory=dict)
    state: dict[int, dict[str, Product]] = field(default_factory=dict)
    sent_kinds: dict[int, set[str]] = field(default_factory=dict)
    refused_kinds: dict[int, set[str]] = field(default_factory=dict)
    sent: dict[int, Counter[str]] = field(default_factory=dict)
    """Line item -> call kind -> SKUs a call must carry (applied or refused)."""
    refused: dict[int, Counter[str]] = field(default_factory=dict)
    products_before: dict[int, int] = field(default_factory=dict)
    bids_on_existing: set[int] = field(default_factory=set)
    """Line items where an append sets the bid of a product already there."""

    def max_calls(self, line_item_id: int) -> int:
        """One read, one call per action kind, one resend per call that carried a refused SKU."""
        if line_item_id not in self.state:
            return 1
        sent = self.sent_kinds.get(line_item_id, set())
        return 1 + len(sent) + len(self.refused_kinds.get(line_item_id, set()))

    def minimum(self, line_item_id: int, api: Api) -> int:
        """The fewest calls a client that knew the API's behaviour (not which SKUs it refuses)
        could make for this line item:

        - its read, in pages: `api.reads`; a line item that does not exist, one call;
        - each kind's SKUs in as few writes as the ids cap allows;
        - refused SKUs, by how the API reports them: named in a 400 (modes a), one resend per
          write that carried one, without them; named in a 200 (c), nothing; in a 400 naming
          none (b), for d refused among the n SKUs of a write, ceil(log2 C(n, d)) more calls,
          the information any strategy of all-or-nothing calls needs to tell which d they
          are (counts in the answers could in principle save a little of it when d > 1); in
          a 200 naming none (d), one read of the line item afterwards;
        - an append answered 204 that set the bid of a product already there: one read back.
        """
        if line_item_id not in self.state:
            return 1
        calls = api.reads(self.products_before[line_item_id])
        refused = self.refused.get(line_item_id, Counter())
        for kind, n in self.sent.get(line_item_id, Counter()).items():
            writes, d = api.writes(n), refused[kind]
            calls += writes
            if d and api.mode == "a" and d < n:
                calls += min(writes, d)
            elif d and api.mode == "b":
                calls += math.ceil(math.log2(math.comb(n, d)))
        after = api.reads(len(self.state[line_item_id]))
        if (api.mode == "d" and refused) or (
            not api.proves_bids and line_item_id in self.bids_on_existing
        ):
            calls += after
        return calls


def expect(
    scenario: Scenario, rows: Iterable[Mapping[str, str]], after: Expectation | None = None
) -> Expectation:
    """`after`: a job applied before this one, whose final state this one starts from."""
    exp = Expectation()
    min_bid: dict[int, dict[str, Decimal]] = {}
    kinds: dict[int, str] = {}
    for account in scenario.accounts:
        catalog = {c.sku: c.minBid for c in account.catalog}
        for spec in account.line_items:
            exp.state[spec.id] = {p.sku: (p.bidOverride, p.status) for p in spec.products}
            if after is not None:
                exp.state[spec.id] = dict(after.state[spec.id])
            exp.products_before[spec.id] = len(exp.state[spec.id])
            min_bid[spec.id] = catalog
            kinds[spec.id] = spec.kind
    for row in rows:
        li, sku, action = int(row["line_item_id"]), row["sku_id"], row["action"]
        bid = Decimal(row["bid_override"]) if row.get("bid_override") else None
        key = (li, sku)
        if li not in exp.state:
            exp.outcomes[key] = ("failed", "line_item_not_found")
            continue
        products = exp.state[li]
        verdict, product = _verdict(action, bid, products.get(sku), min_bid[li].get(sku), kinds[li])
        exp.outcomes[key] = {
            "applied": ("succeeded", None),
            "refused": ("failed", "validation"),
            "unchanged": ("unchanged", None),
            "absent": ("failed", "not_on_line_item"),
            "guardrail": ("failed", "guardrail"),
        }[verdict]
        if verdict in ("applied", "refused"):
            exp.sent_kinds.setdefault(li, set()).add(CALL_OF[action])
            exp.sent.setdefault(li, Counter())[CALL_OF[action]] += 1
        if verdict == "refused":
            exp.refused_kinds.setdefault(li, set()).add(CALL_OF[action])
            exp.refused.setdefault(li, Counter())[CALL_OF[action]] += 1
        if verdict == "applied" and bid is not None and products.get(sku) is not None:
            exp.bids_on_existing.add(li)
        if verdict == "applied" and product is None:
            del products[sku]
        elif verdict == "applied" and product is not None:
            products[sku] = product
    return exp


def _verdict(
    action: str,
    bid: Decimal | None,
    current: Product | None,
    min_bid: Decimal | None,
    kind: str,
) -> tuple[str, Product | None]:
    """What the API does with one SKU change: applied, refused, unchanged, or absent."""
    if action in ("set_bid", "add"):
        if current is None and action == "set_bid":
            return "absent", None
        if current is not None and (bid is None or current[0] == bid):
            return "unchanged", None
        if current is not None and current[0] is not None and bid is not None:
            old = current[0]
            if old == 0 or bid == 0 or max(bid / old, old / bid) > MAX_CHANGE_RATIO:
                return "guardrail", None
        if min_bid is None or (bid is not None and (kind == "preferred_deals" or bid < min_bid)):
            return "refused", None
        return "applied", (bid, current[1] if current else "active")
    if current is None:
        return "absent", None
    if action == "remove":
        return "applied", None
    target = "paused" if action == "pause" else "active"
    if current[1] == target:
        return "unchanged", None
    return "applied", (current[0], target)
