"""Guardrails, decided by the planner against the bid it read."""

from __future__ import annotations

from decimal import Decimal

import pytest

from worker.domain.enums import Action, ErrorKind, ItemStatus
from worker.domain.guardrails import Guardrails, guardrails_from_options
from worker.domain.planner import Snapshot, WantedItem, plan_chunk
from worker.jobs.documents import JobOptions, parse
from worker.jobs.errors import InvalidField

D = Decimal
CURRENT = {
    "a": Snapshot(D("1.00"), "active"),
    "none": Snapshot(None, "active"),
    "zero": Snapshot(D("0"), "paused"),
}
DEFAULT = Guardrails()


def item(n: int, sku: str, action: Action, bid: str | None = None) -> WantedItem:
    return WantedItem(n, sku, action, D(bid) if bid else None)


def failed(guardrails: Guardrails | None, *items: WantedItem) -> dict[int, str]:
    plan = plan_chunk(items, CURRENT, guardrails)
    return {
        o.item_id: o.error_message or ""
        for o in plan.decided
        if o.status is ItemStatus.FAILED and o.error_kind is ErrorKind.GUARDRAIL
    }


def test_three_times_either_way_is_allowed_and_more_is_not() -> None:
    got = failed(
        DEFAULT,
        item(1, "a", Action.SET_BID, "3.00"),
        item(2, "a", Action.SET_BID, "0.34"),
    )
    assert got == {}
    got = failed(DEFAULT, item(3, "a", Action.SET_BID, "3.01"), item(4, "a", Action.ADD, "0.33"))
    assert set(got) == {3, 4}
    assert "3.01 times (the job allows at most 3 times, either way)" in got[3]


def test_a_refused_sku_keeps_its_before_state_and_costs_no_call() -> None:
    plan = plan_chunk([item(1, "a", Action.SET_BID, "9")], CURRENT, DEFAULT)
    assert plan.calls == {}
    (outcome,) = plan.decided
    assert outcome.before == outcome.after == CURRENT["a"]


def test_the_job_maximum_bid_applies_to_new_and_existing_skus() -> None:
    rails = Guardrails(max_bid=D("2.50"))
    got = failed(
        rails,
        item(1, "a", Action.SET_BID, "2.51"),
        item(2, "new", Action.ADD, "2.60"),
        item(3, "a", Action.SET_BID, "2.50"),
    )
    assert set(got) == {1, 2}
    assert "maximum bid 2.50" in got[2]


def test_no_current_bid_means_no_ratio_to_judge() -> None:
    assert not failed(
        DEFAULT, item(1, "none", Action.SET_BID, "50"), item(2, "new", Action.ADD, "9")
    )


def test_a_zero_bid_on_either_side_is_an_unbounded_change() -> None:
    got = failed(DEFAULT, item(1, "a", Action.SET_BID, "0"), item(2, "zero", Action.SET_BID, "1"))
    assert set(got) == {1, 2}
    assert "unbounded" in got[1]


def test_unchanged_and_non_bid_items_are_never_judged() -> None:
    tight = Guardrails(max_bid=D("0.10"), max_change_ratio=D(1))
    assert not failed(
        tight,
        item(1, "a", Action.SET_BID, "1.00"),  # already in place: unchanged
        item(2, "a", Action.PAUSE),
        item(3, "a", Action.ADD),  # no bid: nothing to judge
    )


def test_without_guardrails_anything_goes() -> None:
    plan = plan_chunk([item(1, "a", Action.SET_BID, "99")], CURRENT, None)
    assert [i.item_id for batch in plan.calls.values() for i in batch] == [1]


def test_without_a_read_only_the_maximum_bid_can_be_checked() -> None:
    plan = plan_chunk(
        [item(1, "a", Action.SET_BID, "99"), item(2, "b", Action.SET_BID, "3")],
        None,
        Guardrails(max_bid=D("5")),
    )
    assert [o.item_id for o in plan.decided] == [1]
    assert [i.item_id for batch in plan.calls.values() for i in batch] == [2]


def test_options_parse_with_the_default_ratio() -> None:
    assert guardrails_from_options({}, D(3)) == Guardrails(None, D(3))
    assert guardrails_from_options({"max_bid": "2.5", "max_change_ratio": 5}, D(3)) == Guardrails(
        D("2.5"), D(5)
    )
    assert guardrails_from_options({"max_change_ratio": None}, D(3)) == Guardrails(None, None)
    assert guardrails_from_options({"guardrails": False, "max_bid": "1"}, D(3)) is None


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"guardrails": "no"}, "options.guardrails"),
        ({"max_bid": "abc"}, "options.max_bid"),
        ({"max_bid": -1}, "options.max_bid"),
        ({"max_change_ratio": 0.5}, "options.max_change_ratio"),
        ({"max_change_ratio": True}, "options.max_change_ratio"),
        ({"cancel_requested": True}, "options.cancel_requested"),
    ],
)
def test_bad_options_name_their_field(options: dict[str, object], field: str) -> None:
    """Options are checked once, when the job comes in (the model every interface uses)."""
    with pytest.raises(InvalidField) as caught:
        parse(JobOptions, options, "options")
    assert caught.value.field == field


def test_options_are_stored_as_given() -> None:
    """Left out and null differ for max_change_ratio: the server's default, or no limit."""
    assert parse(JobOptions, {}).stored() == {}
    assert parse(JobOptions, {"max_change_ratio": None}).stored() == {"max_change_ratio": None}
    assert parse(JobOptions, {"max_bid": 2.5}).stored() == {"max_bid": "2.5"}
