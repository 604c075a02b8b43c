"""Reading the SKU a problem names, wherever it is put, and never blaming the wrong one."""

from __future__ import annotations

from typing import Any

import pytest

from worker.criteo.naming import SentSkus, about_whole_request, ids_cap, reported_count

SENT = ["sku-0", "sku-1", "sku-2", "abc-1", "12", "50", "0.50", "a b/c", "id", "x.1"]
PATH = "/2026-07/retail-media/line-items/2465695028166499188/products/append"


def problem(**fields: Any) -> dict[str, Any]:
    return {"type": "validation", "code": "some-code", "traceId": "12", "status": 400, **fields}


# (fields of the problem, the SKU it names or None)
SHAPES: list[tuple[dict[str, Any], str | None]] = [
    # An index in the sent body, in every syntax, as a `source` value or key.
    ({"source": {"id": "data/3/id"}}, "abc-1"),
    ({"source": {"bidOverride": "data/1/attributes/bidOverride"}}, "sku-1"),
    ({"source": {"bidOverride": "/data/2/attributes/bidOverride"}}, "sku-2"),
    ({"source": {"id": "data[0].id"}}, "sku-0"),
    ({"source": {"id": "$.data[1].id"}}, "sku-1"),
    ({"source": {"id": "#/data/2/id"}}, "sku-2"),
    ({"source": {"id": "data.3"}}, "abc-1"),
    ({"source": {"id": "data.3.id"}}, "abc-1"),
    ({"source": {"data[2].attributes.bidOverride": "is below the min bid"}}, "sku-2"),
    ({"source": {"data/1": "invalid"}}, "sku-1"),
    # An index in the text, or in a field we do not know.
    ({"detail": "Invalid value at data[4].attributes.bidOverride"}, "12"),
    ({"pointer": "/data/5"}, "50"),
    # The index beats any text; two indices naming two SKUs name none.
    ({"source": {"id": "data/0/id"}, "detail": "SKU 'sku-1' is not in the catalog"}, "sku-0"),
    ({"source": {"id": "data/0/id", "bidOverride": "data/1/attributes/bidOverride"}}, None),
    ({"source": {"id": "data/0/id"}, "detail": "see data[0].id"}, "sku-0"),
    ({"source": {"id": "data/99/id"}}, None),  # out of range: not ours to guess
    ({"source": {"ids": "data/attributes/ids"}}, None),
    ({"detail": "metadata/3 is wrong"}, None),
    # The SKU itself as a source value or key, or a whole unknown field.
    ({"source": {"id": "sku-2"}}, "sku-2"),
    ({"source": {"sku-1": "not in catalog"}}, "sku-1"),
    ({"source": {"id": "12"}}, "12"),
    ({"productId": "abc-1"}, "abc-1"),
    ({"meta": {"offending": ["sku-0"]}}, "sku-0"),
    # A field name as a source key says where, not which (even when a SKU is called `id`).
    ({"source": {"id": ""}}, None),
    # In the detail or the title, quoted or not.
    ({"detail": "SKU 'abc-1' is not in the catalog of account '42'"}, "abc-1"),
    ({"detail": 'SKU "sku-2" has a bid override 0.30 below its min bid 0.50'}, "sku-2"),
    ({"detail": "SKU sku-2 has a bid override 0.30 below its min bid 0.50."}, "sku-2"),
    ({"detail": "Product not in catalog: sku-1."}, "sku-1"),
    ({"title": "Product sku-0 not in catalog", "detail": "see the catalog"}, "sku-0"),
    ({"detail": "The product \u2018sku-1\u2019 is unknown"}, "sku-1"),
    ({"detail": "(sku-1)"}, "sku-1"),
    ({"detail": "sku=sku-0; reason=not in catalog"}, "sku-0"),
    # Whole tokens only.
    ({"detail": "sku-10 is not in the catalog"}, None),
    ({"detail": "Requests are capped for 120 ids"}, None),
    ({"detail": "xabc-1 is unknown"}, None),
    ({"detail": "abc-1x is unknown"}, None),
    ({"detail": "x.1 is unknown"}, "x.1"),  # a dot inside a SKU is not an end
    ({"detail": "SKU x is unknown"}, None),  # `x.1` is not `x`
    # Number-like SKUs only when quoted, labelled or whole.
    ({"detail": "Bid override 0.30 below the min bid 0.50"}, None),
    ({"detail": "Line item 2465695028166499188 is capped at 12 products"}, None),
    ({"detail": "SKU 12 is not in the catalog"}, "12"),
    ({"detail": "product '50' is unknown"}, "50"),
    ({"detail": "Product #12 not found"}, "12"),
    ({"detail": "Item 12 has no valid id"}, None),  # `item` counts too often as an index
    # Two SKUs at the same strength name none; a stronger mention wins.
    ({"detail": "SKU 'sku-0' conflicts with SKU 'sku-1'"}, None),
    ({"detail": "'sku-0' and 'sku-1' are unknown"}, None),
    ({"detail": "SKU sku-0 is unknown, unlike 'sku-1'"}, "sku-0"),
    ({"detail": "'12' refused", "title": "Product 12 is unknown"}, "12"),
    ({"detail": "sku-0 refused", "productId": "sku-1"}, "sku-1"),
    # A SKU with separators inside is found as a substring, on boundaries.
    ({"detail": "SKU 'a b/c' is not in the catalog"}, "a b/c"),
    ({"detail": "the a b/c product."}, "a b/c"),
    ({"detail": "xa b/c"}, None),
    # The request's own path in `instance` names nothing (a SKU may look like a segment).
    ({"instance": PATH}, None),
    ({"instance": PATH + "/sku-1"}, "sku-1"),
    # Fields that never name a SKU: a trace id equal to a SKU, a code, a status.
    ({"traceId": "sku-1", "code": "sku-2"}, None),
    ({}, None),
]


@pytest.mark.parametrize(("fields", "expected"), SHAPES)
def test_resolve(fields: dict[str, Any], expected: str | None) -> None:
    sent = SentSkus([*SENT, "append", "products"], PATH)
    assert sent.resolve(problem(**fields)) == expected


def test_duplicate_skus_resolve_to_the_first_index_and_an_empty_batch_to_none() -> None:
    assert SentSkus(["a", "b", "a"]).resolve(problem(source={"id": "data/2/id"})) == "a"
    assert SentSkus([]).resolve(problem(detail="SKU 'a'")) is None


@pytest.mark.parametrize(
    ("fields", "cap"),
    [
        ({"code": "exceeded-ids-cap", "title": "Requests are capped for 50 unique ids, 51"}, 50),
        ({"code": "x", "detail": "Requests are capped for 50 unique ids, 51 were provided"}, 50),
        ({"code": "exceeded-ids-cap", "title": "Too many ids"}, 0),
        ({"code": "product-not-in-catalog", "detail": "SKU '50' is unknown"}, None),
    ],
)
def test_the_ids_cap_is_about_the_whole_request(fields: dict[str, Any], cap: int | None) -> None:
    assert ids_cap(fields) == cap
    assert about_whole_request(fields) is (cap is not None)
    assert about_whole_request({"code": "invalid-request-body"})


@pytest.mark.parametrize(
    ("detail", "title", "count"),
    [
        ("3 bid overrides are below the min bid", "", 3),
        ("2 products are not in the account catalog.", "", 2),
        ("", "4 items refused", 4),
        ("Bid overrides are below the min bid for 3 products", "", None),  # not the opening word
        ("60 products", "", None),  # more than the batch holds
        ("0 products", "", None),
        ("0.50 is the min bid", "", None),
        ("Line item 2465695028166499188 is full", "", None),
    ],
)
def test_a_count_is_read_only_where_it_opens_the_text(
    detail: str, title: str, count: int | None
) -> None:
    assert reported_count({"detail": detail, "title": title}, 50) == count


def test_only_skus_with_separators_are_searched_as_substrings() -> None:
    """What keeps a batch of 1,500 SKUs with hundreds of problems linear: every other SKU is
    looked up by token."""
    skus = [f"{n:013d}" for n in range(1, 1500)] + ["a b", "x/1", ""]
    sent = SentSkus(skus, PATH)
    assert sent.awkward == ["a b", "x/1", ""]
    problems = [problem(detail=f"SKU '{skus[n * 3]}' bid 0.{n:02d} < 0.99") for n in range(500)]
    assert [sent.resolve(p) for p in problems] == [skus[n * 3] for n in range(500)]
