"""The benchmark's world: a simulator scenario, a night of repricing rows over its line items,
the fewest calls that night can cost, and the state the simulator must show afterwards.

Deterministic for a seed. Every line item is an auction one and every row is one the API
accepts, so the minimum number of calls is well defined: one read per line item plus one write
per kind of call (append, unpause, pause, delete) that at least one SKU really needs. (Refused
SKUs cost extra calls by design, to isolate them; that is a correctness feature and is measured
by the tests, not here.)
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from worker.bench.minimum import Needs
from worker.criteo.learned import BODY_OVERHEAD
from worker.criteo.models import entry_bytes
from worker.sample import COLUMNS
from worker.simulator.scenario import LineItemSpec, Scenario, generate

#: Line items kept out of every measured job: the warm-up jobs run on them.
WARMUP_LINE_ITEMS = 4
_CENT = Decimal("0.01")

# Desired end state of one SKU: (bid override, status), or None for "not on the line item".
State = tuple[Decimal | None, str] | None


@dataclass(frozen=True, slots=True)
class Row:
    line_item_id: int
    sku_id: str
    action: str
    bid: Decimal | None
    account_id: str

    def as_csv(self) -> list[str]:
        bid = "" if self.bid is None else f"{self.bid:.2f}"
        return [str(self.line_item_id), self.sku_id, self.action, bid, self.account_id]


@dataclass(frozen=True, slots=True)
class LineItemRef:
    line_item: LineItemSpec
    account_id: str
    min_bids: dict[str, Decimal]


@dataclass
class World:
    """A scenario and its line items in a stable order (index 0 = first line item of every job)."""

    scenario: Scenario
    line_items: list[LineItemRef]
    skus_per_line_item: int
    seed: int

    @property
    def measurable(self) -> int:
        return len(self.line_items) - WARMUP_LINE_ITEMS

    def job(self, count: int) -> list[LineItemRef]:
        if count > self.measurable:
            raise ValueError(f"the scenario has {self.measurable} line items, {count} asked")
        return self.line_items[:count]

    def warmup(self) -> list[LineItemRef]:
        return self.line_items[self.measurable :]


def build_world(seed: int, line_items: int, skus_per_line_item: int) -> World:
    scenario = generate(
        seed,
        line_items=line_items + WARMUP_LINE_ITEMS,
        skus_per_line_item=skus_per_line_item,
        catalog_extra=max(10, skus_per_line_item // 2),
        preferred_deals_every=0,
    )
    refs: list[LineItemRef] = []
    for account in scenario.accounts:
        min_bids = {c.sku: c.minBid for c in account.catalog}
        refs.extend(LineItemRef(li, account.id, min_bids) for li in account.line_items)
    refs.sort(key=lambda r: r.line_item.id)
    return World(scenario, refs, skus_per_line_item, seed)


def _new_bid(rng: random.Random, current: Decimal | None, min_bid: Decimal) -> Decimal:
    """A different bid within the default guardrails (at most 3x either way)."""
    if current is None:
        return min_bid + Decimal(rng.randrange(0, 100)) / 100
    factor = Decimal(rng.randrange(70, 141)) / 100
    bid = max(min_bid, (current * factor).quantize(_CENT))
    return bid + _CENT if bid == current else bid


def line_item_rows(ref: LineItemRef, seed: int) -> list[Row]:
    """One night for one line item: as many rows as it has products, mostly new bids, some
    pauses, unpauses and removals, and a few SKUs added from the catalog."""
    li = ref.line_item
    rng = random.Random(seed * 1_000_003 + li.id)
    k = len(li.products)
    adds = max(1, k // 50)
    on_line_item = {p.sku for p in li.products}
    addable = sorted(s for s in ref.min_bids if s not in on_line_item)
    rows: list[Row] = []
    for p in rng.sample(li.products, k - adds):
        r = rng.random()
        if r < 0.88:
            bid = _new_bid(rng, p.bidOverride, ref.min_bids[p.sku])
            rows.append(Row(li.id, p.sku, "set_bid", bid, ref.account_id))
        elif r < 0.93:
            rows.append(Row(li.id, p.sku, "pause", None, ref.account_id))
        elif r < 0.97:
            rows.append(Row(li.id, p.sku, "unpause", None, ref.account_id))
        else:
            rows.append(Row(li.id, p.sku, "remove", None, ref.account_id))
    for sku in rng.sample(addable, min(adds, len(addable))):
        rows.append(Row(li.id, sku, "add", ref.min_bids[sku] + Decimal("0.05"), ref.account_id))
    return rows


@dataclass(frozen=True, slots=True)
class Economy:
    """The fewest calls a job can cost: one read per line item plus one write per kind needed."""

    line_items: int
    skus: int
    reads: int
    writes: int
    writes_by_kind: dict[str, int]
    changes: int  # SKUs that really need a call (the rest is already in its target state)

    @property
    def calls(self) -> int:
        return self.reads + self.writes


def needed_kind(row: Row, current: dict[str, tuple[Decimal | None, str]]) -> str | None:
    """The call a row needs given the line item's current products, or None if none."""
    now = current.get(row.sku_id)
    if row.action in ("set_bid", "add"):
        if now is None:
            return "append" if row.action == "add" else None
        return None if row.bid is None or row.bid == now[0] else "append"
    if now is None:
        return None
    if row.action == "pause":
        return None if now[1] == "paused" else "pause"
    if row.action == "unpause":
        return None if now[1] == "active" else "unpause"
    return "delete"


def _current(ref: LineItemRef) -> dict[str, tuple[Decimal | None, str]]:
    return {p.sku: (p.bidOverride, p.status) for p in ref.line_item.products}


def economy(refs: Sequence[LineItemRef], seed: int) -> Economy:
    by_kind: dict[str, int] = {}
    skus = changes = writes = 0
    for ref in refs:
        current = _current(ref)
        kinds: set[str] = set()
        for row in line_item_rows(ref, seed):
            skus += 1
            kind = needed_kind(row, current)
            if kind is not None:
                changes += 1
                kinds.add(kind)
        writes += len(kinds)
        for kind in kinds:
            by_kind[kind] = by_kind.get(kind, 0) + 1
    return Economy(len(refs), skus, len(refs), writes, dict(sorted(by_kind.items())), changes)


RowMaker = Callable[[LineItemRef, int], list[Row]]


def with_refusals(ref: LineItemRef, seed: int) -> list[Row]:
    """The night of `line_item_rows` plus SKUs the API refuses: in every other line item a new
    bid below the SKU's minimum (on a product without a bid override, so that no guardrail
    decides it first), in every third the addition of a SKU not in the catalog."""
    rows = line_item_rows(ref, seed)
    li = ref.line_item
    position = li.id % 6
    if position % 2 == 0:
        unbid = {p.sku for p in li.products if p.bidOverride is None}
        at = next(
            (n for n, r in enumerate(rows) if r.action == "set_bid" and r.sku_id in unbid), None
        )
        if at is not None:
            row = rows[at]
            rows[at] = Row(
                li.id, row.sku_id, "set_bid", ref.min_bids[row.sku_id] - _CENT * 5, ref.account_id
            )
    if position % 3 == 0:
        rows.append(Row(li.id, f"not-in-catalog-{li.id % 100_000}", "add", None, ref.account_id))
    return rows


def refused(row: Row, ref: LineItemRef) -> bool:
    """Whether the API refuses the row: a SKU not in the catalog, or a bid below its minimum."""
    min_bid = ref.min_bids.get(row.sku_id)
    if min_bid is None:
        return row.action == "add"
    return row.bid is not None and row.action in ("set_bid", "add") and row.bid < min_bid


def needs(ref: LineItemRef, rows: Sequence[Row]) -> Needs:
    """What the line item's rows ask of the API, for `fewest_calls`."""
    current = _current(ref)
    sent: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    after = len(current)
    bids_on_existing = False
    for row in rows:
        kind = needed_kind(row, current)
        if kind is None:
            continue
        sent[kind] += 1
        sizes[kind] += entry_bytes(row.sku_id, row.bid if kind == "append" else None)
        if refused(row, ref):
            refusals[kind] += 1
        elif kind == "delete":
            after -= 1
        elif row.sku_id not in current:
            after += 1
        elif row.bid is not None:
            bids_on_existing = True
    return Needs(
        products_before=len(current),
        products_after=after,
        sent=dict(sent),
        refused=dict(refusals),
        sent_bytes={k: BODY_OVERHEAD + n for k, n in sizes.items()},
        bids_on_existing=bids_on_existing,
    )


def desired_state(
    refs: Iterable[LineItemRef], seed: int, make: RowMaker = line_item_rows
) -> dict[tuple[int, str], State]:
    """(line item, SKU) → what the simulator must show for every SKU the job names (a refused
    row leaves its SKU as it was)."""
    wanted: dict[tuple[int, str], State] = {}
    for ref in refs:
        current = _current(ref)
        for row in make(ref, seed):
            now = current.get(row.sku_id)
            key = (row.line_item_id, row.sku_id)
            if refused(row, ref):
                wanted[key] = now
            elif row.action == "remove":
                wanted[key] = None
            elif row.action in ("set_bid", "add"):
                wanted[key] = (row.bid, "active" if now is None else now[1])
            elif now is not None:
                wanted[key] = (now[0], "paused" if row.action == "pause" else "active")
    return wanted


def wrong_skus(wanted: dict[tuple[int, str], State], state: dict[str, Any]) -> int:
    """How many SKUs of `wanted` the simulator's `/_sim/state` does not show as wanted."""
    seen: dict[tuple[int, str], State] = {}
    line_items = {li for li, _ in wanted}
    for account in state["accounts"]:
        for li in account["line_items"]:
            if li["id"] not in line_items:
                continue
            for p in li["products"]:
                bid = p["bidOverride"]
                seen[(li["id"], p["sku"])] = (
                    None if bid is None else Decimal(str(bid)).quantize(_CENT),
                    p["status"],
                )
    return sum(1 for key, want in wanted.items() if seen.get(key) != want)


def rows_for(
    refs: Iterable[LineItemRef], seed: int, make: RowMaker = line_item_rows
) -> Iterator[Row]:
    for ref in refs:
        yield from make(ref, seed)


def write_job_csv(
    refs: Iterable[LineItemRef], seed: int, path: Path, make: RowMaker = line_item_rows
) -> int:
    """Stream the job's rows to a CSV file; returns the number of rows."""
    n = 0
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in rows_for(refs, seed, make):
            writer.writerow(row.as_csv())
            n += 1
    return n


def warmup_csv(world: World, path: Path) -> Path:
    """A tiny job over the warm-up line items: one pause each (so each one is one chunk)."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for ref in world.warmup():
            sku = ref.line_item.products[0].sku
            writer.writerow([str(ref.line_item.id), sku, "pause", "", ref.account_id])
    return path
