"""Refusal facts in Postgres: recorded, read for a line item and its accounts' SKUs, forgotten
when the API accepts what they said it would refuse, pruned once expired."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal as D

import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.db.facts import FactRepository
from worker.domain.enums import Action
from worker.domain.facts import Change, Fact, FactKind, Refusal, learn
from worker.retention import prune_finished_jobs

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def _learned(li: int, sku: str, refusal: Refusal, action: Action = Action.SET_BID) -> list[Fact]:
    bid = None if action is Action.ADD else D("0.30")
    return learn(Change(li, "42", sku, action, bid), refusal, job_id=7, now=NOW)


def test_facts_are_read_back_for_their_line_item_and_account(engine: sa.Engine) -> None:
    li = uuid.uuid4().int % 10**15
    low = Refusal("c", "Bid override below min bid", "below its min bid 0.40", "trace-9")
    with Session(engine) as session:
        repo = FactRepository(session)
        repo.record(_learned(li, "s1", low), ttl_seconds=3600)
        session.commit()
        mine = repo.for_line_item(li, ["s1"], ["42"])
        elsewhere = repo.for_line_item(li + 1, ["s1"], ["42"])
        other_account = repo.for_line_item(li + 1, ["s1"], ["9"])
    assert {f.kind for f in mine} == {FactKind.MIN_BID, FactKind.REFUSED}
    [minimum] = [f for f in mine if f.kind is FactKind.MIN_BID]
    assert (minimum.min_bid, minimum.refused_bid, minimum.trace_id, minimum.job_id) == (
        D("0.40"),
        D("0.30"),
        "trace-9",
        7,
    )
    assert {f.kind for f in elsewhere} == {FactKind.MIN_BID, FactKind.REFUSED}
    assert other_account == []


def test_an_accepted_change_forgets_the_facts_it_contradicts(engine: sa.Engine) -> None:
    li = uuid.uuid4().int % 10**15
    with Session(engine) as session:
        repo = FactRepository(session)
        repo.record(_learned(li, "s1", Refusal(None, "Bid below min bid", "", None)), 3600)
        repo.record(_learned(li, "s2", Refusal(None, "Bid override not allowed", "", None)), 3600)
        repo.record(_learned(li, "s3", Refusal(None, "Not in catalog", "", None), Action.ADD), 3600)
        repo.forget_contradicted(li, [("s1", "42", D("0.35"))], [])
        kept = {(f.kind, f.sku_id) for f in repo.for_line_item(li, [], [])}
        assert (FactKind.MIN_BID, "s1") in kept  # 0.35 is above the 0.30 refused: no news
        repo.forget_contradicted(li, [("s1", "42", D("0.25"))], [("s3", "42")])
        kept = {(f.kind, f.sku_id) for f in repo.for_line_item(li, [], [])}
        session.commit()
    assert (FactKind.MIN_BID, "s1") not in kept
    assert (FactKind.NO_BID_OVERRIDE, None) not in kept
    assert (FactKind.NOT_IN_CATALOG, "s3") not in kept
    assert {k for k, _ in kept} == {FactKind.REFUSED}


def test_expired_facts_are_not_read_and_are_pruned(engine: sa.Engine) -> None:
    li = uuid.uuid4().int % 10**15
    with Session(engine) as session:
        repo = FactRepository(session)
        repo.record(_learned(li, "gone", Refusal(None, "x", "y", None)), ttl_seconds=-1)
        session.commit()
        assert repo.for_line_item(li, ["gone"], ["42"]) == []
    # The retention run prunes them, even with the items of jobs kept forever.
    assert prune_finished_jobs(engine, retention_days=0, batch_size=1).facts >= 1
    with Session(engine) as session:
        left = session.execute(
            sa.text("SELECT count(*) FROM refusal_facts WHERE line_item_id = :li"), {"li": li}
        ).scalar_one()
    assert left == 0
