"""The pure rules, without HTTP: what is applied and what is reported in each regime."""

from __future__ import annotations

from decimal import Decimal

from worker.simulator.scenario import generate
from worker.simulator.state import SimState, apply_write


def _state() -> tuple[SimState, int]:
    state = SimState(generate(11, line_items=2, skus_per_line_item=3, catalog_extra=2, accounts=1))
    return state, next(iter(state.line_items))


def test_all_or_nothing_applies_nothing() -> None:
    state, li_id = _state()
    li = state.line_items[li_id]
    free = [s for s in state.catalogs[li.account_id] if s not in li.products]
    problems = apply_write(
        state, li, "append", [{"id": free[0]}, {"id": "x"}], cap=500, all_or_nothing=True
    )
    assert [(p.index, p.code) for p in problems] == [(1, "product-not-in-catalog")]
    assert free[0] not in li.products


def test_partial_applies_the_valid_items() -> None:
    state, li_id = _state()
    li = state.line_items[li_id]
    free = [s for s in state.catalogs[li.account_id] if s not in li.products]
    apply_write(state, li, "append", [{"id": free[0]}, {"id": "x"}], cap=500, all_or_nothing=False)
    assert li.products[free[0]].status == "active"


def test_duplicate_new_sku_counts_once_against_the_cap() -> None:
    state, li_id = _state()
    li = state.line_items[li_id]
    free = next(s for s in state.catalogs[li.account_id] if s not in li.products)
    min_bid = state.catalogs[li.account_id][free]
    items = [{"id": free}, {"id": free, "attributes": {"bidOverride": float(min_bid + 1)}}]
    assert apply_write(state, li, "append", items, cap=4, all_or_nothing=True) == []
    assert li.products[free].bid == min_bid + Decimal(1)


def test_ignored_bid_updates_still_add_products() -> None:
    state, li_id = _state()
    li = state.line_items[li_id]
    existing = next(iter(li.products.values()))
    old = existing.bid
    bid = state.catalogs[li.account_id][existing.sku] + 3
    items = [{"id": existing.sku, "attributes": {"bidOverride": float(bid)}}]
    apply_write(state, li, "append", items, cap=500, all_or_nothing=True, ignore_bid_updates=True)
    assert existing.bid == old
