"""Which SKUs of a refused batch the API refused, when it does not say: group testing.

A write is all or nothing: a 400 applies none of its items and says at most how many problems
it had (one problem per refused item, or a count in each problem). Finding the refused SKUs is
adaptive group testing with one rule of its own: a good SKU is applied only by a call that
passes, so each must end up in one. Every call here tests one part of the batch:

- *Counts exact* (each refused call tells how many of its items were refused, per code): send
  half of a group; the other half's count is the group's minus the half's, so it is never sent
  to learn it. A part with count 0 is known good: it rides along with the next test and is
  applied when that passes (else it is sent once at the end); a part whose count is its size is
  refused whole, without a call, once its code is known; any other part is split again.
  Halving is within 6% of the best part size (equal to it for powers of two; README, "Economy").
- *No exact counts* (only "at least one", or at least as many as the codes named): generalised
  binary splitting on certain facts alone. Unsettled SKUs are suspects; a part of them is sent,
  sized to pass about half the time, n·(1 - 2^(-1/d)) while d refused ones are known to remain
  (so about d·ln 2 parts when d > 1); once none is known to remain, the part doubles after each
  pass and halves after each failure, so a batch with one refused SKU costs no call more than
  it must and a batch where most are refused is soon tested one by one. A part that fails holds
  a refused SKU: it is halved until that one stands alone (a half that passes leaves the other
  holding it, without a call; a half that fails sends the other back to the suspects).
- Counts believed and contradicted later (known-good SKUs refused, a count larger than its part:
  a number misread, a server counting otherwise) stop being believed: everything not settled
  becomes a suspect and is found on certain facts, so a wrong count costs calls, never a wrong
  outcome. Refusals inferred from counts are therefore reported once the batch is settled.

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
    """Refused items per code: exact while counts are believed, else the codes seen."""

    @property
    def refused(self) -> int:
        return sum(self.counts.values())


@dataclass(slots=True)
class _Test(Generic[T]):
    group: _Group[T] | None
    """The group a part of which is tested; None for a test of the pool."""
    size: int
    riders: list[T]
    """Known-good SKUs sent along (counts believed): applied if the test passes."""
    probe: bool = False
    """A part of the suspects sent with none known to remain: its answer sizes the next."""


class Isolation(Generic[T]):
    """The tests that settle one refused batch (named SKUs already taken out by the caller).

    `sure` is False when the batch's problems all named SKUs: the rest is then only suspect.
    """

    def __init__(self, items: Sequence[T], tally: Tally, *, sure: bool = True) -> None:
        self.trusting = tally.exact
        self._groups: deque[_Group[T]] = deque()
        self._pool: list[T] = []
        """Believing counts: SKUs known good. Otherwise: suspects."""
        self._held: list[Refusal[T]] = []
        self._found: list[Refusal[T]] = []
        self._test: _Test[T] | None = None
        self._codes = {code: n for code, n in tally.counts.items() if n > 0}
        self._owed = 1 if sure else 0
        """A refused SKU is certainly among the suspects (the batch failed, none found yet)."""
        self._expected = max(1, sum(self._codes.values())) if sure else 0
        """How many refused SKUs the suspects are expected to hold (the tally's lower bound)."""
        self._part: int | None = None
        if self.trusting:
            self._groups.append(_Group(list(items), sure, dict(self._codes)))
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
            riders = list(self._pool) if self.trusting else []
            self._test = _Test(group, len(group.items) // 2, riders)
            return group.items[: self._test.size] + riders
        if not self.trusting and self._owed and len(self._pool) == 1:
            self._refuse(self._pool.pop(), {})  # the last suspect of a batch that failed
        if self._pool:
            size, probe = len(self._pool), False
            if not self.trusting:
                size, probe = self._suspects_part(), self._expected == 0
            self._test = _Test(None, size, [], probe)
            return self._pool[:size]
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
        test = self._pending()
        self._pool = self._pool[len(test.riders) :]
        if test.group is None:
            self._pool = self._pool[test.size :]
            if test.probe:
                self._part = 2 * test.size
            return
        test.group.items = test.group.items[test.size :]
        if self.trusting and test.group.refused > len(test.group.items):
            self._distrust()

    def failed(self, tally: Tally, named: Mapping[T, str] | None = None) -> None:
        """The last test was refused: `named` are its SKUs the API named, with their code (the
        caller records those), `tally` what it said about the rest."""
        test = self._pending()
        named = named or {}
        self._expected = max(0, self._expected - len(named))
        counts = {code: n for code, n in tally.counts.items() if n > 0}
        sure = bool(counts) or not named
        if test.group is None:
            sent, self._pool = self._pool[: test.size], self._pool[test.size :]
            self._owed = 0  # the refused SKU known to be among the suspects may be in this part
            if self.trusting:
                self._distrust()  # SKUs the counts called good were refused
            elif test.probe:
                self._part = max(1, test.size // 2)
            self._file(_Group([i for i in sent if i not in named], sure, counts))
            return
        group = test.group
        part = [i for i in group.items[: test.size] if i not in named]
        rest = group.items[test.size :]
        self._groups.popleft()
        if not self.trusting:
            self._file(_Group(part, sure, counts))
            self._pool.extend(rest)
            return
        rest_counts = dict(group.counts)
        for code, n in [*counts.items(), *((c, 1) for c in named.values())]:
            rest_counts[code] = rest_counts.get(code, 0) - n
        rider_named = any(i in named for i in test.riders)
        consistent = (
            (counts or named)
            and tally.exact
            and not rider_named
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
        # The counts contradict themselves: the test's part and its riders failed together.
        riders = [i for i in test.riders if i not in named]
        self._pool = self._pool[len(test.riders) :]
        self._groups.appendleft(_Group(rest, False, {}))
        self._distrust()
        self._file(_Group(part + riders, sure, counts))

    def _pending(self) -> _Test[T]:
        if self._test is None:
            raise RuntimeError("no test is in flight")
        test, self._test = self._test, None
        return test

    def _file(self, group: _Group[T]) -> None:
        """A part that failed: halved until its refused SKU stands alone when it surely holds
        one, else (only SKUs the API named were refused) back to the suspects."""
        if not group.items:
            return
        if group.sure:
            self._groups.appendleft(group)
        else:
            self._pool.extend(group.items)

    def _settle(self, group: _Group[T]) -> bool:
        """Decide a group without a call where the facts (or believed counts) allow."""
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
            self._refuse(group.items[0], group.counts)
            return True
        return False

    def _refuse(self, item: T, codes: Mapping[str, int]) -> None:
        """Found refused on certain facts, with the codes of the failed part it was left of
        (the batch's, when it alone had one code)."""
        if not codes and len(self._codes) == 1:
            codes = self._codes
        self._found.append(Refusal(item, tuple(codes)))
        self._owed = 0
        self._expected = max(0, self._expected - 1)

    def _suspects_part(self) -> int:
        """How many suspects to send: sized to pass about half the time while refused ones
        are known to remain among them, else grown and shrunk by the last probes' answers."""
        n = len(self._pool)
        if self._expected:
            return split_size(n, self._expected)
        return min(n, self._part or n)

    def _distrust(self) -> None:
        """The counts contradicted themselves: keep certain facts only (sure groups), and make
        everything else that is not settled a suspect."""
        self.trusting = False
        self._owed = self._expected = 0
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
    """The part of n suspects holding at least `refused` refused SKUs to send, when a failed
    part does not tell how many it holds: the size that passes about half the time,
    n·(1 - 2^(-1/d)), which makes each call's answer worth about one bit."""
    size = round(n * (1 - 2 ** (-1 / refused)))
    return min(n - 1, max(1, size)) if n > 1 else 1
