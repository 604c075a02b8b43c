from __future__ import annotations

from decimal import Decimal

from worker.simulator.scenario import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    READONLY_CLIENT_ID,
    Scenario,
    generate,
)


def test_generate_is_deterministic() -> None:
    assert generate(7, line_items=5, skus_per_line_item=4) == generate(
        7, line_items=5, skus_per_line_item=4
    )
    assert generate(7, line_items=5) != generate(8, line_items=5)


def test_generated_shape() -> None:
    scenario = generate(3, line_items=20, skus_per_line_item=10, catalog_extra=5)
    line_items = [li for a in scenario.accounts for li in a.line_items]
    assert len(line_items) == 20
    assert len({li.id for li in line_items}) == 20
    assert all(li.id < 2**63 for li in line_items)
    assert 1 <= sum(li.kind == "preferred_deals" for li in line_items) <= 3
    for account in scenario.accounts:
        catalog = {e.sku: e.minBid for e in account.catalog}
        assert len(catalog) == 15
        assert all(Decimal("0.10") <= m <= Decimal("0.50") for m in catalog.values())
        for li in account.line_items:
            assert len(li.products) == 10
            for p in li.products:
                assert p.sku in catalog
                assert p.bidOverride is None or p.bidOverride >= catalog[p.sku]
                if li.kind == "preferred_deals":
                    assert p.bidOverride is None


def test_default_clients() -> None:
    scenario = generate(1, line_items=2)
    clients = {c.client_id: c for c in scenario.clients}
    demo = clients[DEFAULT_CLIENT_ID]
    assert demo.client_secret == DEFAULT_CLIENT_SECRET
    assert demo.scope == "manage"
    assert set(demo.accounts) == {a.id for a in scenario.accounts}
    assert clients[READONLY_CLIENT_ID].scope == "read"


def test_json_round_trip_keeps_money_as_numbers() -> None:
    scenario = generate(2, line_items=3, skus_per_line_item=5)
    text = scenario.model_dump_json()
    assert '"minBid":0.' in text
    assert Scenario.model_validate_json(text) == scenario
