"""What a job must do to a scenario, worked out from the API's rules alone (not from our planner).

Used to judge end-to-end runs: each SKU's expected outcome, the expected final state of every
line item, how many calls each line item may cost at most, and the fewest calls any client
could make against an API that behaves as the simulator was configured to
(`worker.bench.minimum`, shared with the benchmark; it knows the API's rules, not our planner).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from worker.bench.minimum import Api, Needs, fewest_calls
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
        """The fewest calls a client that knew how the API behaves (not which SKUs it refuses)
        could make for this line item (see `fewest_calls`); one for a line item not found."""
        if line_item_id not in self.state:
            return 1
        return fewest_calls(
            api,
            Needs(
                products_before=self.products_before[line_item_id],
                products_after=len(self.state[line_item_id]),
                sent=self.sent.get(line_item_id, Counter()),
                refused=self.refused.get(line_item_id, Counter()),
                bids_on_existing=line_item_id in self.bids_on_existing,
            ),
        )


def expect(
    scenario: Scenario, rows: Iterable[Mapping[str, str]], after: Expectation | None = None
) -> Expectation:
    """`after`: a job applied before this one, whose final state this one starts from."""
    exp = Expectation()
    min_bid, kinds = _start(exp, scenario, after)
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


def _start(
    exp: Expectation, scenario: Scenario, after: Expectation | None
) -> tuple[dict[int, dict[str, Decimal]], dict[int, str]]:
    """The line items' state before the job, and their catalogs' min bids and kinds."""
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
    return min_bid, kinds


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
        # The desired state of a remove is "not there": already reached.
        return ("unchanged" if action == "remove" else "absent"), None
    if action == "remove":
        return "applied", None
    target = "paused" if action == "pause" else "active"
    if current[1] == target:
        return "unchanged", None
    return "applied", (current[0], target)
