"""Refusal facts: learned from the words of a problem in any plausible wording, predicting the
same refusal again, and only within their scope (issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from worker.domain.enums import Action
from worker.domain.facts import Change, FactKind, Refusal, learn, predict

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
LI = 2465695028166499188


def change(
    sku: str = "abc-1", action: Action = Action.SET_BID, bid: str | None = "0.30", **kw: object
) -> Change:
    values: dict[str, object] = {
        "line_item_id": LI,
        "account_id": "42",
        "sku_id": sku,
        "action": action,
        "bid": None if bid is None else D(bid),
    }
    values.update(kw)
    return Change(**values)  # type: ignore[arg-type]


def kinds(refusal: Refusal, what: Change | None = None) -> dict[FactKind, object]:
    facts = learn(what or change(), refusal, job_id=41, now=NOW)
    assert facts[0].kind is FactKind.REFUSED
    return {f.kind: (f.min_bid, f.refused_bid) for f in facts[1:]}


@pytest.mark.parametrize(
    ("refusal", "minimum"),
    [
        (
            Refusal(
                "bid-override-below-min-bid",
                "Bid override below min bid",
                "SKU 'abc-1' has a bid override 0.30 below its min bid 0.40",
                "t",
            ),
            D("0.40"),
        ),
        (
            Refusal("BID_TOO_LOW", "Invalid bid", "bidOverride must be >= minBid (0.45)", None),
            D("0.45"),
        ),
        (Refusal(None, "The minimum CPC bid for this product is 0.5", "", None), D("0.5")),
        (
            Refusal(
                "validation",
                "Bid override below min bid",
                "1 bid overrides are below the min bid",
                None,
            ),
            None,
        ),
        (Refusal(None, "Bid below minimum", "minimum bid 0.10 for sku abc-1", None), None),
        # The SKU named right after the words, as a title may name it: never a minimum.
        (Refusal(None, "Bid override below min bid: sku-1-000065", "", None), None),
        (Refusal(None, "Below min bid: SKU 12", "", None), None),
        (Refusal(None, "Bid below min bid", "the minimum bid is EUR 0.45.", None), D("0.45")),
        (Refusal(None, "Bid below min bid", "min bid: $0.45", None), D("0.45")),
        (Refusal(None, "Bid below min bid", "min bid 0.45-b", None), None),
    ],
)
def test_a_minimum_bid_is_learned_with_its_value_when_given(
    refusal: Refusal, minimum: D | None
) -> None:
    """A number no bigger than the refused bid cannot be the minimum: only the refusal is kept."""
    assert kinds(refusal) == {FactKind.MIN_BID: (minimum, D("0.30"))}


def test_a_sku_that_is_a_number_named_after_the_words_is_not_its_minimum() -> None:
    refusal = Refusal(None, "Bid override below min bid: 12", "", None)
    assert kinds(refusal, change(sku="12")) == {FactKind.MIN_BID: (None, D("0.30"))}


@pytest.mark.parametrize(
    "refusal",
    [
        Refusal(
            "product-not-in-catalog",
            "Product not in catalog",
            "SKU 'x' is not in the catalog",
            None,
        ),
        Refusal("PRODUCT_NOT_FOUND", "Unknown product", "", None),
        Refusal(None, "Invalid product", "sku x not found in the account 42", None),
    ],
)
def test_a_sku_missing_from_the_catalog_is_learned(refusal: Refusal) -> None:
    assert kinds(refusal, change(action=Action.ADD, bid=None)) == {
        FactKind.NOT_IN_CATALOG: (None, None)
    }


@pytest.mark.parametrize(
    "refusal",
    [
        Refusal("bid-override-not-allowed", "Bid override not allowed", "", None),
        Refusal(
            None,
            "Invalid request",
            "Line items with preferred deals cannot have a bidOverride",
            None,
        ),
        Refusal(None, "Not allowed", "bid override is not allowed on this line item", None),
    ],
)
def test_a_line_item_that_refuses_bid_overrides_is_learned(refusal: Refusal) -> None:
    facts = learn(change(), refusal, job_id=41, now=NOW)
    [fact] = [f for f in facts if f.kind is FactKind.NO_BID_OVERRIDE]
    assert fact.sku_id is None


def test_an_unknown_refusal_teaches_only_the_change_itself() -> None:
    assert kinds(Refusal("weird", "Something", "went wrong", None)) == {}


def test_the_same_job_always_learns_other_jobs_only_when_asked() -> None:
    refused = learn(change(), Refusal("x", "Something", "odd", "trace-1"), job_id=41, now=NOW)
    assert predict(change(), refused, job_id=41, across_jobs=False) is not None
    assert predict(change(), refused, job_id=42) is None  # an exact refusal is the job's own
    assert predict(change(bid="0.31"), refused, job_id=41) is None


def test_a_known_minimum_fails_lower_bids_or_raises_them_when_asked() -> None:
    facts = learn(
        change(),
        Refusal("c", "Bid override below min bid", "0.30 below its min bid 0.40", "t"),
        job_id=41,
        now=NOW,
    )
    low = predict(change(bid="0.35", sku_id="abc-1"), facts, job_id=50)
    assert low is not None
    assert "below min bid 0.40 (seen in job 41" in low.reason
    assert predict(change(bid="0.35"), facts, job_id=50, across_jobs=False) is None
    assert predict(change(bid="0.40"), facts, job_id=50) is None
    raised = predict(change(bid="0.35"), facts, job_id=50, clamp=True)
    assert raised is not None
    assert raised.clamp_to == D("0.40")
    # The same SKU on another line item of the account; another account: no.
    assert predict(change(bid="0.35", line_item_id=7), facts, job_id=50) is not None
    assert predict(change(bid="0.35", line_item_id=7, account_id="9"), facts, job_id=50) is None


def test_without_the_minimum_only_bids_at_or_below_the_refused_one_fail() -> None:
    facts = learn(
        change(), Refusal(None, "Bid override below min bid", "", None), job_id=41, now=NOW
    )
    assert predict(change(bid="0.30"), facts, job_id=50) is not None
    assert predict(change(bid="0.20"), facts, job_id=50) is not None
    assert predict(change(bid="0.31"), facts, job_id=50) is None
    assert predict(change(bid="0.20"), facts, job_id=50, clamp=True).clamp_to is None  # type: ignore[union-attr]


def test_line_item_facts_hold_for_every_bid_there_and_nowhere_else() -> None:
    facts = learn(change(), Refusal(None, "Bid override not allowed", "", None), job_id=41, now=NOW)
    assert predict(change(sku="other", bid="5"), facts, job_id=50) is not None
    assert predict(change(sku="other", bid="5", line_item_id=7), facts, job_id=50) is None
    assert predict(change(sku="other", action=Action.PAUSE, bid=None), facts, job_id=50) is None
