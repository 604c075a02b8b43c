"""Which SKUs of a refused batch the API refused, when it does not say: group testing.

A write is all or nothing: a 400 applies none of its items and says at most how many problems
it had (one problem per refused item, or a count in each problem). Finding the refused SKUs is
adaptive group testing with one rule of its own: a good SKU is applied only by a call that
passes, so each must end up in one. Every call here is a test of one part of one group:

- *Counts exact* (each refused call tells how many of its items were refused): send half of a
  group; the other half's count is the group's minus the half's, so it is never sent to learn
  it. A part with count 0 joins the pool of SKUs known good, sent once at the end; a part whose
  count is its size is refused whole, without a call, once its code is known; any other part is
  split again. Halving is within 6% of the best part size (equal to it for powers of two;
  README, "Economy"), and close to the information bound.
- *No exact counts* (only "at least one", or as many as the codes named): splitting on certain
  facts alone. A part is sized to pass about half the time, n·(1 - 2^(-1/d)) for d refused SKUs
  expected (half when d is 1, about n/(1.44·d) parts' worth when more); if it passes, the rest
  still holds the refused SKU and is split without being sent; if it fails, it is split and the
  rest is only suspect: suspects are pooled and sent together, once, after the groups.
- The pool is sent last. If SKUs the counts called good are refused there, the counts lied (a
  number misread, a server counting differently): everything not yet settled becomes suspect
  and is found on certain facts alone, so a wrong count costs calls, never a wrong outcome.
  Refusals inferred from counts are therefore only reported once the batch is settled.

Pure: the runner sends what `next_test` returns and reports back with `passed` or `failed`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Tally:
    """What a refused call said about the refusals it tied to no SKU: how many, per code.

    `exact` when the counts are the numbers of refused items; otherwise each is only a lower
    bound (a code seen at least once)."""

    counts: Mapping[str, int] = field(default_factory=dict)
    exact: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Refusal(Generic[T]):
    """A SKU found refused, and the codes of its problems (the first is the one to record)."""

    item: T
    codes: tuple[str, ...]


@dataclass(slots=True)
class _Group(Generic[T]):
    items: list[T]
    sure: bool
    """Certainly holds a refused item, whatever the counts say (it failed, or it is what is
    left of one that failed once the rest passed)."""
    counts: dict[str, int]
    """Refused items per code: exact while counts are trusted, else codes seen (at least 1)."""

    @property
    def refused(self) -> int:
        return sum(self.counts.values())


class Isolation(Generic[T]):
    """The tests that settle one refused batch (named SKUs already taken out by the caller).

    `sure` is False when the batch's problems all named SKUs: the rest is then only suspect.
    """

    def __init__(self, items: Sequence[T], tally: Tally, *, sure: bool = True) -> None:
        self.trusting = tally.exact
        self._groups: deque[_Group[T]] = deque()
        self._pool: list[T] = []
        self._held: list[Refusal[T]] = []
        self._found: list[Refusal[T]] = []
        self._test: tuple[_Group[T] | None, int, list[T]] | None = None
        counts = {code: n for code, n in tally.counts.items() if n > 0}
        if self.trusting or sure:
            self._groups.append(_Group(list(items), sure, counts))
        else:
            self._pool.extend(items)

    def next_test(self) -> list[T] | None:
        """The items of the next call, or None when the batch is settled."""
        if self._test is not None:
            raise RuntimeError("the previous test has not been reported")
        # Settle first whatever needs no call: known-good parts join the pool, so they can
        # ride along with the next test and be applied by it when it passes.
        self._groups = deque(g for g in list(self._groups) if not self._settle(g))
        if self._groups:
            group = self._groups[0]
            size = self._test_size(group)
            riders = list(self._pool) if self.trusting else []
            self._test = (group, size, riders)
            return group.items[:size] + riders
        if self._pool:
            self._test = (None, 0, list(self._pool))
            return list(self._pool)
        self._found.extend(self._held)
        self._held.clear()
        return None

    def refusals(self) -> list[Refusal[T]]:
        """Refusals found since the last asked (those inferred from counts once all is settled)."""
        found, self._found = self._found, []
        return found

    def unsettled(self) -> list[T]:
        """Give up: every item not yet applied nor found refused (to be sent again afresh)."""
        items = [i for g in self._groups for i in g.items] + self._pool
        items += [r.item for r in self._held]
        self._groups.clear()
        self._pool.clear()
        self._held.clear()
        self._test = None
        return items

    def passed(self) -> None:
        """The last test passed: its items were applied."""
        group, size, riders = self._pending()
        if riders:
            self._pool = self._pool[len(riders) :]
        if group is None:
            return
        group.items = group.items[size:]
        if self.trusting and group.refused > len(group.items):
            self._distrust()

    def failed(self, tally: Tally, named: Mapping[T, str] | None = None) -> None:
        """The last test was refused: `named` are its SKUs the API named, with their code (the
        caller records those), `tally` what it said about the rest."""
        group, size, riders = self._pending()
        named = named or {}
        part = [i for i in (group.items[:size] if group else []) if i not in named]
        counts = {code: n for code, n in tally.counts.items() if n > 0}
        sure = bool(counts) or not named
        if group is None or any(i in named for i in riders):
            # Refused where the counts said all was good: they are no longer believed.
            self._pool = [i for i in self._pool[len(riders) :] if i not in named]
            if group is not None:
                self._groups.popleft()
                self._groups.appendleft(_Group(group.items[size:], group.sure, {}))
            if self.trusting:
                self._distrust()
            self._file(_Group(part + [i for i in riders if i not in named], sure, counts))
            return
        rest = group.items[size:]
        self._groups.popleft()
        if self.trusting:
            rest_counts = dict(group.counts)
            for code, n in [*counts.items(), *((c, 1) for c in named.values())]:
                rest_counts[code] = rest_counts.get(code, 0) - n
            consistent = (
                (counts or named)
                and tally.exact
                and tally.total <= len(part)
                and min(rest_counts.values(), default=0) >= 0
            )
            if consistent:
                self._groups.extendleft(
                    [
                        _Group(rest, False, {c: n for c, n in rest_counts.items() if n}),
                        _Group(part, sure, counts),
                    ]
                )
                return
            self._groups.appendleft(_Group(rest, False, {}))
            self._pool = self._pool[len(riders) :]
            self._distrust()
            self._file(_Group(part + riders, sure, counts), first=True)
            return
        self._file(_Group(part, sure, counts), first=True)
        self._pool.extend(rest)

    def _pending(self) -> tuple[_Group[T] | None, int, list[T]]:
        if self._test is None:
            raise RuntimeError("no test is in flight")
        test, self._test = self._test, None
        return test

    def _file(self, group: _Group[T], *, first: bool = False) -> None:
        """A group found by certain facts: to split when sure, else to the suspects' pool."""
        if not group.items:
            return
        if not group.sure:
            self._pool.extend(group.items)
        elif first:
            self._groups.appendleft(group)
        else:
            self._groups.append(group)

    def _settle(self, group: _Group[T]) -> bool:
        """Decide a group without a call where the facts (or trusted counts) allow."""
        n = len(group.items)
        if n == 0:
            return True
        if self.trusting:
            if group.refused == 0:
                self._pool.extend(group.items)
                return True
            if group.refused == n and (n == 1 or len(group.counts) == 1):
                self._held.extend(Refusal(item, tuple(group.counts)) for item in group.items)
                return True
            return False
        if n == 1:
            self._found.append(Refusal(group.items[0], tuple(group.counts)))
            return True
        return False

    def _test_size(self, group: _Group[T]) -> int:
        n = len(group.items)
        if self.trusting:
            return n // 2
        return split_size(n, max(1, group.refused))

    def _distrust(self) -> None:
        """The counts contradicted themselves: keep certain facts only (sure groups), and make
        everything else that is not settled a suspect."""
        self.trusting = False
        groups = list(self._groups)
        self._groups.clear()
        for group in groups:
            if group.sure:
                self._groups.append(group)
            else:
                self._pool.extend(group.items)
        self._pool.extend(r.item for r in self._held)
        self._held.clear()


def split_size(n: int, refused: int) -> int:
    """The part of a group of n holding `refused` refused SKUs to send, when a failed part
    does not tell how many it holds: the size that passes about half the time, n·(1 - 2^(-1/d)),
    which makes each call's answer worth about one bit."""
    size = round(n * (1 - 2 ** (-1 / refused)))
    return min(n - 1, max(1, size))
