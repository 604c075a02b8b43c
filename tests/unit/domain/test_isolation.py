"""Group testing of refused batches: always the right SKUs, at close to the fewest calls.

`worker.bench.grouptests` answers each test as an all-or-nothing API would, in each style an
API may use, and checks every outcome (exactly the refused SKUs found, with their code, every
other SKU applied by a passing call); here the calls are also set against the information bound
and an exact optimum.
"""

from __future__ import annotations

from statistics import mean

import pytest

from worker.bench.grouptests import (
    Responder,
    at_least,
    batches,
    bound,
    exact,
    halving,
    optimum,
    settle,
    silent,
)
from worker.domain.isolation import Isolation, Tally, split_size


def lower_bound(test: list[int], refused: dict[int, str]) -> Tally:
    """The right counts, not claimed exact: only sizes the parts, infers nothing."""
    return Tally(exact(test, refused).counts, exact=False)


def understated(test: list[int], refused: dict[int, str]) -> Tally:
    """Counts one short whenever it can: wrong, and believed."""
    return Tally({c: max(1, n - 1) for c, n in exact(test, refused).counts.items()}, exact=True)


STYLES: dict[str, Responder] = {
    "exact": exact,
    "at-least": at_least,
    "lower-bound": lower_bound,
    "silent": silent,
    "understated": understated,
}


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize(("n", "d"), [(1, 1), (2, 1), (2, 2), (3, 2), (7, 3), (40, 1), (40, 5)])
def test_every_refused_sku_is_found_and_every_other_applied(style: str, n: int, d: int) -> None:
    for refused in batches(n, d, 60):
        settle(n, refused, STYLES[style])


def test_a_pair_with_one_refused_costs_one_call_when_its_first_half_passes() -> None:
    assert settle(2, {1: "a"}, exact) == 2
    assert settle(2, {0: "a"}, exact) == 3  # the first half refused, the other sent to apply it


def test_counts_that_say_everything_cost_no_call() -> None:
    isolation = Isolation([1, 2, 3], Tally({"a": 3}, exact=True))
    assert isolation.next_test() is None
    assert [(r.item, r.codes) for r in isolation.refusals()] == [(i, ("a",)) for i in (1, 2, 3)]
    clean = Isolation([1, 2, 3], Tally({}, exact=True), sure=False)
    assert clean.next_test() == [1, 2, 3]
    clean.passed()
    assert clean.next_test() is None
    assert clean.refusals() == []


def test_a_group_refused_whole_under_several_codes_is_split_until_each_code_is_known() -> None:
    assert settle(2, {0: "a", 1: "b"}, exact) == 2
    assert settle(4, {0: "a", 1: "b", 2: "a", 3: "b"}, exact) == 4


def test_skus_named_by_a_later_refusal_leave_the_search() -> None:
    isolation = Isolation([1, 2, 3, 4], Tally({"a": 3}, exact=True))
    assert isolation.next_test() == [1, 2]
    isolation.failed(Tally({"a": 1}, exact=True), named={1: "a"})  # 1 named, so 2 is refused
    assert isolation.next_test() == [3]  # {3, 4} still holds one
    isolation.passed()
    assert isolation.next_test() is None
    assert sorted(r.item for r in isolation.refusals()) == [2, 4]


def test_only_named_problems_leave_the_rest_suspect_and_it_is_sent_once() -> None:
    isolation = Isolation([1, 2, 3], Tally({}, exact=False), sure=False)
    assert isolation.next_test() == [1, 2, 3]
    isolation.passed()
    assert isolation.next_test() is None


def test_counts_that_lie_are_caught_and_the_outcome_stays_right() -> None:
    """0 and 3 are refused, and every count the API gives is one short."""
    refused = {0: "a", 3: "a"}
    isolation = Isolation(list(range(4)), understated(list(range(4)), refused))
    assert isolation.next_test() == [0, 1]
    isolation.failed(understated([0, 1], refused))
    assert isolation.next_test() == [0, 2, 3]  # {2, 3} is good by the counts: it rides along
    isolation.failed(understated([0, 2, 3], refused))
    assert isolation.trusting
    assert sorted(isolation.next_test() or []) == [1, 2, 3]  # the rest, good by the counts
    isolation.failed(understated([1, 2, 3], refused))  # it is not: counts no longer believed
    assert not isolation.trusting
    found = []
    while (test := isolation.next_test()) is not None:
        if set(test) & set(refused):
            isolation.failed(at_least(test, refused))
        else:
            isolation.passed()
        found += [r.item for r in isolation.refusals()]
    assert sorted(found + [r.item for r in isolation.refusals()]) == [0, 3]


def test_giving_up_returns_everything_not_settled() -> None:
    isolation = Isolation(list(range(6)), Tally({"a": 1}, exact=True))
    isolation.next_test()
    isolation.failed(Tally({"a": 1}, exact=True))
    assert sorted(isolation.unsettled()) == list(range(6))
    assert isolation.next_test() is None


def test_reports_must_follow_tests() -> None:
    isolation = Isolation([1, 2], Tally({"a": 1}, exact=True))
    with pytest.raises(RuntimeError):
        isolation.passed()
    isolation.next_test()
    with pytest.raises(RuntimeError):
        isolation.next_test()


# --- how many calls -------------------------------------------------------------------------


@pytest.mark.parametrize("n", [4, 6, 10, 25, 40, 64])
def test_halving_is_within_6_percent_of_the_best_part_size(n: int) -> None:
    for d in range(1, n):
        assert halving(n, d) <= optimum(n, d) * 1.06, (n, d)
    if n & (n - 1) == 0:
        assert all(halving(n, d) == pytest.approx(optimum(n, d)) for d in range(1, n))


@pytest.mark.parametrize(("n", "d"), [(10, 1), (40, 1), (40, 2), (100, 1), (100, 3), (300, 2)])
def test_with_exact_counts_calls_stay_near_the_bound(n: int, d: int) -> None:
    """Mean calls: at most the bound plus one (the known-good SKUs sent at the end)."""
    calls = mean(settle(n, refused, exact) for refused in batches(n, d, 200))
    assert calls <= bound(n, d) + 1, (calls, bound(n, d))


@pytest.mark.parametrize(("n", "d"), [(40, 3), (100, 3), (100, 6)])
def test_without_exact_counts_more_parts_beat_halves_when_several_are_refused(
    n: int, d: int
) -> None:
    """Told "at least d" (parts of `split_size`) against told "at least 1" (halves): the same
    pass/fail answers otherwise."""
    cases = batches(n, d, 300, codes="a")
    sized = mean(settle(n, refused, lower_bound) for refused in cases)
    halved = mean(settle(n, refused, at_least) for refused in cases)
    assert split_size(n, d) < n // 2
    assert sized < halved
    assert sized <= 1.25 * bound(n, d) + 1, (sized, bound(n, d))


@pytest.mark.parametrize(("n", "d"), [(40, 20), (40, 40), (100, 60)])
def test_without_counts_a_batch_mostly_refused_soon_goes_one_by_one(n: int, d: int) -> None:
    """The part sent shrinks after each failure: not far from sending each SKU alone."""
    calls = mean(settle(n, refused, silent) for refused in batches(n, d, 100, codes="a"))
    assert calls <= 1.6 * (n + 1), calls


def test_the_last_suspect_of_a_refused_batch_is_refused_without_a_call() -> None:
    isolation = Isolation(["x"], Tally({"a": 1}))
    assert isolation.next_test() is None
    assert [(r.item, r.codes) for r in isolation.refusals()] == [("x", ("a",))]


def test_split_size() -> None:
    assert [split_size(100, d) for d in (1, 2, 3, 5, 10)] == [50, 29, 21, 13, 7]
    assert split_size(2, 5) == 1
    assert split_size(3, 1) == 2
