"""What the API taught us by refusing a change, kept so that the same refusal is not paid for
twice: in a retry of the same job (a lesson a crash must not lose), and in later jobs.

Criteo publishes no codes for these refusals, so a fact is recognised from the words of the
problem (its code, title and detail), loosely: a SKU's minimum bid ("below min bid", with the
minimum when the detail gives it), a SKU its account's catalog lacks, a line item that refuses
bid overrides (preferred deals). Every refusal is also kept as the exact change it was, which
only the same job uses. Each fact carries its evidence (job, API code, trace id, time) and
expires; a later change the API accepts that contradicts a fact removes it.

Pure: the runner reads facts, the planner asks `predict`, the runner records what `learn` finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from worker.domain.enums import Action
from worker.domain.money import format_bid


class FactKind(StrEnum):
    MIN_BID = "min_bid"  # the SKU's bids below `min_bid`, or at or below `refused_bid`, fail
    NOT_IN_CATALOG = "not_in_catalog"  # the SKU cannot be added: its account's catalog lacks it
    NO_BID_OVERRIDE = "no_bid_override"  # the line item refuses bid overrides (preferred deals)
    REFUSED = "refused"  # this very change was refused: the same job's lesson only


@dataclass(frozen=True, slots=True)
class Refusal:
    """What the API said when it refused one SKU's change."""

    code: str | None
    title: str
    detail: str
    trace_id: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """The change that was refused, or that a plan is about to send."""

    line_item_id: int
    account_id: str | None
    sku_id: str
    action: Action
    bid: Decimal | None


@dataclass(frozen=True, slots=True)
class Fact:
    kind: FactKind
    line_item_id: int
    account_id: str | None
    sku_id: str | None  # None: about the whole line item
    min_bid: Decimal | None
    refused_bid: Decimal | None
    action: str | None  # REFUSED: the change itself
    bid: Decimal | None
    error_code: str | None
    message: str
    job_id: int
    trace_id: str | None
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class Prediction:
    """A change the facts say will fail (`clamp_to` None), or will pass at `clamp_to`."""

    fact: Fact
    reason: str
    clamp_to: Decimal | None = None


_MIN_BID = re.compile(r"min(?:imum)?[\s_-]*(?:cpc[\s_-]*)?bid", re.IGNORECASE)
# The minimum's value right after the words, with at most "for this product", a verb, a colon or
# a currency between: "min bid 0.40", "minimum bid for this product is EUR 0.40", "min bid:
# $0.40", "minBid (0.40)". A number inside another token ("min bid: sku-1-000065") is not one.
_MIN_BID_VALUE = re.compile(
    r"min(?:imum)?[\s_-]*(?:cpc[\s_-]*)?bids?\b[\s:=(]*"
    r"(?:for\s+(?:this|the)\s+(?:product|sku|item)\s+)?(?:(?:is|of|at)\b[\s:=]*)?"
    r"(?:(?:EUR|USD|GBP|JPY|CHF|CAD|AUD|SEK|NOK|DKK|PLN|BRL|MXN|INR|SGD|NZD)\s*|[$€£¥]\s*)?"
    r"([0-9]+(?:\.[0-9]+)?)(?![\w-]|\.[0-9])",
    re.IGNORECASE,
)
_CATALOG = re.compile(
    r"catalog|catalogue|not[\s_-]*(?:found|known)[\s_-]*(?:in|for)[\s_-]*(?:the[\s_-]*)?account"
    r"|unknown[\s_-]*(?:product|sku)",
    re.IGNORECASE,
)
_NO_OVERRIDE = re.compile(
    r"preferred[\s_-]*deal|bid[\s_-]*override[\s_-]*(?:is[\s_-]*)?not[\s_-]*allowed"
    r"|(?:not[\s_-]*allowed|cannot[\s_-]*have)[^.]{0,40}bid[\s_-]*override",
    re.IGNORECASE,
)


def _minimum(text: str, sku: str) -> Decimal | None:
    """The minimum a problem's text gives, unless the number there is the SKU itself (a problem
    may name its SKU right after the words: "below min bid: 12")."""
    match = _MIN_BID_VALUE.search(text)
    if match is None or match.group(1) == sku:
        return None
    try:
        return Decimal(match.group(1))
    except InvalidOperation:
        return None


def learn(change: Change, refusal: Refusal, *, job_id: int, now: datetime) -> list[Fact]:
    """The facts a refusal of this change teaches: always the change itself (for the same
    job), and what it says about the SKU or the line item when its words say it."""

    def fact(kind: FactKind, **values: object) -> Fact:
        base: dict[str, object] = {
            "kind": kind,
            "line_item_id": change.line_item_id,
            "account_id": change.account_id,
            "sku_id": change.sku_id,
            "min_bid": None,
            "refused_bid": None,
            "action": None,
            "bid": None,
            "error_code": refusal.code,
            "message": ": ".join(p for p in (refusal.title, refusal.detail) if p)[:2000],
            "job_id": job_id,
            "trace_id": refusal.trace_id,
            "observed_at": now,
        }
        return Fact(**{**base, **values})  # type: ignore[arg-type]

    facts = [fact(FactKind.REFUSED, action=change.action.value, bid=change.bid)]
    words = " ".join(p for p in (refusal.code or "", refusal.title, refusal.detail) if p)
    bid_write = change.action in (Action.SET_BID, Action.ADD) and change.bid is not None
    if bid_write and _MIN_BID.search(words):
        minimum = _minimum(refusal.detail, change.sku_id) or _minimum(refusal.title, change.sku_id)
        if minimum is not None and change.bid is not None and minimum <= change.bid:
            minimum = None  # a number that cannot be the minimum: keep only what was refused
        facts.append(fact(FactKind.MIN_BID, min_bid=minimum, refused_bid=change.bid))
    elif bid_write and _NO_OVERRIDE.search(words):
        facts.append(fact(FactKind.NO_BID_OVERRIDE, sku_id=None))
    elif change.action in (Action.ADD, Action.SET_BID) and _CATALOG.search(words):
        facts.append(fact(FactKind.NOT_IN_CATALOG))
    return facts


def _applies(fact: Fact, change: Change) -> bool:
    """A SKU's fact holds on its line item and, when known, its account's other line items;
    a line item's fact on that line item only."""
    if fact.sku_id is None:
        return fact.line_item_id == change.line_item_id
    same_place = fact.line_item_id == change.line_item_id or (
        fact.account_id is not None and fact.account_id == change.account_id
    )
    return same_place and fact.sku_id == change.sku_id


def _seen(fact: Fact) -> str:
    return f"seen in job {fact.job_id} on {fact.observed_at:%Y-%m-%d %H:%M} UTC"


def predict(
    change: Change,
    facts: Iterable[Fact],
    *,
    job_id: int,
    across_jobs: bool = True,
    clamp: bool = False,
) -> Prediction | None:
    """Whether the facts say this change will fail (or, with `clamp`, pass at a known minimum
    bid). The same job's refusals always count; other jobs' only `across_jobs`."""
    relevant = [
        f
        for f in facts
        if _applies(f, change)
        and (f.job_id == job_id or (across_jobs and f.kind is not FactKind.REFUSED))
    ]
    for fact in relevant:
        if fact.kind is FactKind.REFUSED and _same_change(fact, change):
            return Prediction(fact, f"refused earlier in this job ({_seen(fact)}): {fact.message}")
    if change.bid is None or change.action not in (Action.SET_BID, Action.ADD):
        return _catalog(change, relevant)
    return _bid(change.bid, relevant, clamp) or _catalog(change, relevant)


def _same_change(fact: Fact, change: Change) -> bool:
    return (
        fact.line_item_id == change.line_item_id
        and fact.action == change.action.value
        and fact.bid == change.bid
    )


def _bid(bid: Decimal, relevant: list[Fact], clamp: bool) -> Prediction | None:
    """What the line item's and the SKU's bid facts say of this bid."""
    for fact in relevant:
        if fact.kind is FactKind.NO_BID_OVERRIDE:
            return Prediction(fact, f"the line item refuses bid overrides ({_seen(fact)})")
    for fact in relevant:
        if fact.kind is not FactKind.MIN_BID:
            continue
        if fact.min_bid is not None and bid < fact.min_bid:
            minimum = format_bid(fact.min_bid)
            if clamp:
                return Prediction(
                    fact, f"raised to the min bid {minimum} ({_seen(fact)})", fact.min_bid
                )
            return Prediction(fact, f"below min bid {minimum} ({_seen(fact)})")
        if fact.refused_bid is not None and bid <= fact.refused_bid:
            refused = format_bid(fact.refused_bid)
            return Prediction(fact, f"below min bid: {refused} was refused ({_seen(fact)})")
    return None


def _catalog(change: Change, relevant: list[Fact]) -> Prediction | None:
    if change.action is not Action.ADD:
        return None
    for fact in relevant:
        if fact.kind is FactKind.NOT_IN_CATALOG and fact.sku_id == change.sku_id:
            return Prediction(fact, f"not in the account's catalog ({_seen(fact)})")
    return None
