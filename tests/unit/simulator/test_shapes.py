"""The naming shapes and anonymous counts of problems, without HTTP."""

from __future__ import annotations

import pytest

from worker.criteo.naming import SentSkus
from worker.simulator.shapes import NAMINGS, anonymous, named
from worker.simulator.state import BELOW_MIN_BID, NOT_IN_CATALOG, ItemProblem

LOW = ItemProblem(2, BELOW_MIN_BID, "bidOverride", "SKU 'abc-1' has a bid below 0.30", "abc-1")
SENT = SentSkus(["x-0", "x-1", "abc-1", "x-3"])


@pytest.mark.parametrize("shape", NAMINGS)
def test_every_shape_names_the_sku_for_our_resolver(shape: str) -> None:
    fields = named(LOW, shape)  # type: ignore[arg-type]
    assert fields["title"].startswith("Bid override below min bid")
    assert SENT.resolve({"code": LOW.code, **fields}) == "abc-1"


@pytest.mark.parametrize("shape", [s for s in NAMINGS if s != "path+quote"])
def test_every_shape_but_the_default_gives_one_clue(shape: str) -> None:
    fields = named(LOW, shape)  # type: ignore[arg-type]
    clues = [
        bool(fields["source"]),
        "abc-1" in fields["detail"],
        "abc-1" in fields["title"],
        "productId" in fields,
    ]
    assert sum(clues) == 1, fields


def test_an_item_without_an_id_is_named_by_its_index() -> None:
    bad = ItemProblem(1, NOT_IN_CATALOG, "id", "Item 1 has no valid id")
    for shape in NAMINGS:
        assert named(bad, shape)["source"] in (
            {"id": "data/1/id"},
            {"id": "/data/1/id"},
            {"id": "data[1].id"},
            {"id": "data.1"},
            {"data[1]": "id"},
        )


def test_anonymous_counts() -> None:
    problems = [LOW, LOW, ItemProblem(0, NOT_IN_CATALOG, "id", "SKU 'z' is not", "z")]
    assert [p["detail"] for p in anonymous(problems, "detail")] == [
        "2 bid overrides are below the min bid",
        "1 products are not in the account catalog",
    ]
    assert len(anonymous(problems, "entries")) == 3
    assert [p["detail"] for p in anonymous(problems, "none")] == [
        "Bid overrides are below the min bid",
        "Products are not in the account catalog",
    ]
