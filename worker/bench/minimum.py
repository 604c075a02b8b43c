"""The fewest calls any client could make for one line item, against an API whose behaviour it
knows (pages, caps, 204 appends, how refusals are reported) but not which SKUs it will refuse.

The yardstick of the benchmark's economy section and of the end-to-end tests' oracle; worked out
from the API's rules alone, never from the planner.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Api:
    """How the API behaves, as far as it changes the fewest calls.

    `mode`: how refused SKUs are reported (the simulator's validation modes: a named in a 400,
    b unnamed in a 400, c named in a 200, d unnamed in a 200); `page`: the most products one
    GET can answer (a page cap, or the largest `limit` taken); `counted`: pages carry
    `meta.count` (else the last page must be seen short); `ids_cap`, `max_bytes`: the most ids,
    and body bytes, one write may carry; `proves_bids`: an append answers with a body."""

    mode: str = "a"
    page: int | None = None
    counted: bool = True
    ids_cap: int | None = None
    max_bytes: int | None = None
    proves_bids: bool = True

    def reads(self, products: int) -> int:
        """GETs to read a line item of this many products to its end."""
        if self.page is None:
            return 1
        return max(1, math.ceil((products + (0 if self.counted else 1)) / self.page))

    def writes(self, skus: int, body_bytes: int = 0) -> int:
        """Requests to carry this many SKUs (whose body would be this large)."""
        by_ids = math.ceil(skus / self.ids_cap) if self.ids_cap else 1
        by_bytes = math.ceil(body_bytes / self.max_bytes) if self.max_bytes else 1
        return max(by_ids, by_bytes)


@dataclass(frozen=True)
class Needs:
    """What one line item's night asks of the API: its products before and after, and per call
    kind the SKUs a call must carry (`sent`, their body bytes), of which `refused` are refused."""

    products_before: int
    products_after: int
    sent: Mapping[str, int]
    refused: Mapping[str, int] = field(default_factory=dict)
    sent_bytes: Mapping[str, int] = field(default_factory=dict)
    bids_on_existing: bool = False
    """An append sets the bid of a product already there (a 204 does not prove it applied)."""


def fewest_calls(api: Api, needs: Needs) -> int:
    """The line item's read in pages; each kind's SKUs in as few writes as the caps allow;
    then for refused SKUs, by how the API reports them:

    - named in a 400 (a): one resend per write that carried one, without them;
    - named in a 200 (c): nothing more;
    - unnamed in a 400 (b): for d refused among the n SKUs of a kind, ceil(log2 C(n, d)) more
      calls, the information any strategy of all-or-nothing calls needs to tell which d they
      are (counts in the answers could in principle save a little of it when d > 1);
    - unnamed in a 200 (d): one read of the line item afterwards;
    and one read afterwards when an append answered 204 set the bid of a product already there.
    """
    calls = api.reads(needs.products_before)
    for kind, n in needs.sent.items():
        writes, d = api.writes(n, needs.sent_bytes.get(kind, 0)), needs.refused.get(kind, 0)
        calls += writes
        if d and api.mode == "a" and d < n:
            calls += min(writes, d)
        elif d and api.mode == "b":
            calls += math.ceil(math.log2(math.comb(n, d)))
    refused = any(needs.refused.values())
    if (api.mode == "d" and refused) or (not api.proves_bids and needs.bids_on_existing):
        calls += api.reads(needs.products_after)
    return calls
