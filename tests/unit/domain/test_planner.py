from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from worker.domain.enums import Action, ErrorKind, ItemStatus
from worker.domain.facts import Change, FactKind, Prediction, Refusal, learn, predict
from worker.domain.guardrails import Guardrails
from worker.domain.planner import (
    UNKNOWN,
    CallKind,
    Snapshot,
    WantedItem,
    expected_after,
    plan_chunk,
)

D = Decimal
CURRENT = {
    "a": Snapshot(D("1.00"), "active"),
    "b": Snapshot(None, "paused"),
    "c": Snapshot(D("0.50"), "active"),
}


def item(n: int, sku: str, action: Action, bid: str | None = None, attempts: int = 0) -> WantedItem:
    return WantedItem(n, sku, action, D(bid) if bid else None, attempts)


def test_calls_come_in_a_fixed_order_one_per_kind() -> None:
    plan = plan_chunk(
        [
            item(1, "c", Action.REMOVE),
            item(2, "a", Action.PAUSE),
            item(3, "b", Action.UNPAUSE),
            item(4, "a2", Action.ADD, "0.30"),
            item(5, "c2", Action.ADD),
        ],
        {**CURRENT},
    )
    kinds = [kind for kind, _ in plan.ordered_calls()]
    assert kinds == [CallKind.APPEND, CallKind.UNPAUSE, CallKind.PAUSE, CallKind.DELETE]
    assert [i.item_id for i in plan.calls[CallKind.APPEND]] == [4, 5]


def test_items_already_in_place_are_unchanged_without_a_call() -> None:
    plan = plan_chunk(
        [
            item(1, "a", Action.SET_BID, "1.0"),
            item(2, "b", Action.PAUSE),
            item(3, "a", Action.UNPAUSE),
            item(4, "c", Action.ADD),
            item(5, "c", Action.ADD, "0.5000"),
        ],
        CURRENT,
    )
    assert plan.calls == {}
    assert [(o.item_id, o.status) for o in plan.decided] == [
        (n, ItemStatus.UNCHANGED) for n in range(1, 6)
    ]
    assert plan.decided[0].before == CURRENT["a"] == plan.decided[0].after


def test_skus_not_on_the_line_item_fail_except_for_add_and_remove() -> None:
    plan = plan_chunk(
        [
            item(1, "x", Action.SET_BID, "1"),
            item(2, "x", Action.PAUSE),
            item(3, "x", Action.UNPAUSE),
            item(4, "x", Action.REMOVE),
            item(5, "x", Action.ADD),
        ],
        CURRENT,
    )
    assert [(o.item_id, o.status, o.error_kind) for o in plan.decided] == [
        *((n, ItemStatus.FAILED, ErrorKind.NOT_ON_LINE_ITEM) for n in range(1, 4)),
        # Its desired state, not there, is already reached: no call, and nothing failed.
        (4, ItemStatus.UNCHANGED, None),
    ]
    assert plan.decided[0].before is None
    assert (plan.decided[3].before, plan.decided[3].after) == (None, None)
    assert [i.item_id for i in plan.calls[CallKind.APPEND]] == [5]


def test_without_a_read_everything_is_sent_and_before_is_unknown() -> None:
    plan = plan_chunk([item(1, "a", Action.SET_BID, "1.00"), item(2, "x", Action.PAUSE)], None)
    assert plan.decided == []
    assert plan.before == {1: UNKNOWN, 2: UNKNOWN}
    assert len(plan.ordered_calls()) == 2


def test_an_item_sent_by_a_crashed_attempt_and_now_in_place_succeeded() -> None:
    plan = plan_chunk(
        [item(1, "a", Action.SET_BID, "1.00", attempts=1), item(2, "gone", Action.REMOVE, None, 1)],
        CURRENT,
    )
    assert [(o.item_id, o.status) for o in plan.decided] == [
        (1, ItemStatus.SUCCEEDED),
        (2, ItemStatus.SUCCEEDED),
    ]


def test_expected_after() -> None:
    a = CURRENT["a"]
    assert expected_after(item(1, "a", Action.SET_BID, "2"), a) == Snapshot(D("2"), "active")
    assert expected_after(item(1, "a", Action.PAUSE), a) == Snapshot(D("1.00"), "paused")
    assert expected_after(item(1, "b", Action.UNPAUSE), CURRENT["b"]) == Snapshot(None, "active")
    assert expected_after(item(1, "a", Action.REMOVE), a) is None
    assert expected_after(item(1, "n", Action.ADD), None) == Snapshot(None, "active")
    assert expected_after(item(1, "n", Action.ADD, "0.4"), None) == Snapshot(D("0.4"), "active")
    assert expected_after(item(1, "n", Action.SET_BID, "0.4"), UNKNOWN) == Snapshot(
        D("0.4"), "unknown"
    )


def test_clear_bid_writes_only_where_an_override_is_set() -> None:
    plan = plan_chunk(
        [
            item(1, "a", Action.CLEAR_BID),
            item(2, "b", Action.CLEAR_BID),
            item(3, "z", Action.CLEAR_BID),
        ],
        {**CURRENT},
    )
    assert [i.item_id for i in plan.calls[CallKind.APPEND]] == [1]
    assert plan.calls[CallKind.APPEND][0].sent_bid == D(0)
    decided = {o.item_id: (o.status, o.error_kind) for o in plan.decided}
    assert decided == {
        2: (ItemStatus.UNCHANGED, None),
        3: (ItemStatus.FAILED, ErrorKind.NOT_ON_LINE_ITEM),
    }
    assert expected_after(item(1, "a", Action.CLEAR_BID), CURRENT["a"]) == Snapshot(None, "active")


def _minimum(job: int, minimum: str) -> Callable[..., Prediction | None]:
    """The facts of one refusal of SKU `a` (`minimum` its min bid), asked as the runner asks."""
    (refused, fact) = learn(
        Change(1, "42", "a", Action.SET_BID, D("0.10")),
        Refusal("bid-below-min", "Bid below min bid", f"min bid is {minimum}", "t1"),
        job_id=job,
        now=datetime(2026, 12, 3, tzinfo=UTC),
    )
    assert refused.kind is FactKind.REFUSED
    assert fact.kind is FactKind.MIN_BID

    def ask(wanted: WantedItem, *, clamp: bool = False) -> Prediction | None:
        change = Change(1, "42", wanted.sku_id, wanted.action, wanted.desired_bid)
        return predict(change, [fact], job_id=99, clamp=clamp)

    return ask


def test_a_change_the_facts_say_will_fail_fails_without_a_call() -> None:
    ask = _minimum(41, "0.25")
    plan = plan_chunk(
        [item(1, "a", Action.SET_BID, "0.20"), item(2, "a", Action.SET_BID, "0.25")],
        {**CURRENT},
        predict=ask,
    )
    (failed,) = plan.decided
    assert (failed.item_id, failed.status, failed.error_kind) == (
        1,
        ItemStatus.FAILED,
        ErrorKind.VALIDATION,
    )
    assert failed.error_code == "bid-below-min"
    assert failed.error_message is not None
    assert failed.error_message.startswith(
        "predicted, not sent: below min bid 0.25 (seen in job 41"
    )
    assert [i.item_id for i in plan.calls[CallKind.APPEND]] == [2]


def test_a_bid_raised_to_its_minimum_is_decided_again_and_then_guarded() -> None:
    ask = _minimum(41, "1.00")

    def clamp(wanted: WantedItem) -> Prediction | None:
        return ask(wanted, clamp=True)

    # `a` is at 1.00 already: raised to its minimum, it needs no call, and says why.
    plan = plan_chunk([item(1, "a", Action.SET_BID, "0.50")], {**CURRENT}, predict=clamp)
    (unchanged,) = plan.decided
    assert unchanged.status is ItemStatus.UNCHANGED
    assert unchanged.note is not None
    assert unchanged.note.startswith("raised to the min bid 1.00")
    # Raised beyond what the guardrails allow from its current bid: a guardrail failure.
    current = {"a": Snapshot(D("0.20"), "active")}
    guarded = plan_chunk(
        [item(1, "a", Action.SET_BID, "0.50")], current, Guardrails(None, D(3)), clamp
    )
    assert [o.error_kind for o in guarded.decided] == [ErrorKind.GUARDRAIL]
    # Within them: sent at the minimum.
    sent = plan_chunk(
        [item(1, "a", Action.SET_BID, "0.50")], {"a": Snapshot(D("0.60"), "active")}, predict=clamp
    )
    assert [(i.desired_bid, i.note is not None) for i in sent.calls[CallKind.APPEND]] == [
        (D("1.00"), True)
    ]
