"""What a job must do to a scenario, worked out from the API's rules alone (not from our planner).

Used to judge end-to-end runs: each SKU's expected outcome, the expected final state of every
line item, and how many calls each line item may cost at most.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from worker.simulator.scenario import Scenario

Key = tuple[int, str]
Product = tuple[Decimal | None, str]
CALL_OF = {"set_bid": "append", "add": "append", "pause": "pause", "unpause": "unpause",
           "remove": "delete"}


@dataclass
class Expectation:
    outcomes: dict[Key, tuple[str, str | None]] = field(default_factory=dict)
    state: dict[int, dict[str, Product]] = field(default_factory=dict)
    sent_kinds: dict[int, set[str]] = field(default_factory=dict)
    refused_kinds: dict[int, set[str]] = field(default_factory=dict)

    def max_calls(self, line_item_id: int) -> int:
        """One read, one call per action kind, one resend per call that carried a refused SKU."""
        if line_item_id not in self.state:
            return 1
        sent = self.sent_kinds.get(line_item_id, set())
        return 1 + len(sent) + len(self.refused_kinds.get(line_item_id, set()))


def expect(scenario: Scenario, rows: Iterable[Mapping[str, str]]) -> Expectation:
    exp = Expectation()
    min_bid: dict[int, dict[str, Decimal]] = {}
    kinds: dict[int, str] = {}
    for account in scenario.accounts:
        catalog = {c.sku: c.minBid for c in account.catalog}
        for li in account.line_items:
            exp.state[li.id] = {p.sku: (p.bidOverride, p.status) for p in li.products}
            min_bid[li.id] = catalog
            kinds[li.id] = li.kind
    for row in rows:
        li, sku, action = int(row["line_item_id"]), row["sku_id"], row["action"]
        bid = Decimal(row["bid_override"]) if row.get("bid_override") else None
        key = (li, sku)
        if li not in exp.state:
            exp.outcomes[key] = ("failed", "line_item_not_found")
            continue
        products = exp.state[li]
        current = products.get(sku)

        def refuse() -> None:
            exp.outcomes[key] = ("failed", "validation")
            exp.sent_kinds.setdefault(li, set()).add(CALL_OF[action])
            exp.refused_kinds.setdefault(li, set()).add(CALL_OF[action])

        def apply(product: Product | None) -> None:
            exp.outcomes[key] = ("succeeded", None)
            exp.sent_kinds.setdefault(li, set()).add(CALL_OF[action])
            if product is None:
                del products[sku]
            else:
                products[sku] = product

        if action in ("set_bid", "add"):
            if current is None and action == "set_bid":
                exp.outcomes[key] = ("failed", "not_on_line_item")
            elif current is not None and (bid is None or current[0] == bid):
                exp.outcomes[key] = ("unchanged", None)
            elif sku not in min_bid[li]:
                refuse()
            elif bid is not None and (kinds[li] == "preferred_deals" or bid < min_bid[li][sku]):
                refuse()
            else:
                apply((bid if bid is not None else None, current[1] if current else "active"))
        elif current is None:
            exp.outcomes[key] = ("failed", "not_on_line_item")
        elif action == "remove":
            apply(None)
        else:
            target = "paused" if action == "pause" else "active"
            if current[1] == target:
                exp.outcomes[key] = ("unchanged", None)
            else:
                apply((current[0], target))
    return exp
