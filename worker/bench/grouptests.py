"""Calls to settle one batch the API refused without naming SKUs: the worker's group testing
(`worker.domain.isolation`) against an all-or-nothing "API" in a few lines, set against the
information bound and, for exact counts, the best part size found by dynamic programming.

`python -m worker.bench.grouptests` prints the table the README quotes. Computed, not timed: the
same seed gives the same figures on any machine.
"""

from __future__ import annotations

import functools
import math
import random
import sys
from collections.abc import Callable
from statistics import mean

from worker.domain.isolation import Isolation, Tally

Responder = Callable[[list[int], dict[int, str]], Tally]


def exact(test: list[int], refused: dict[int, str]) -> Tally:
    """One problem per code, opening with the count of its refused items."""
    counts: dict[str, int] = {}
    for item in test:
        if item in refused:
            counts[refused[item]] = counts.get(refused[item], 0) + 1
    return Tally(counts, exact=True)


def at_least(test: list[int], refused: dict[int, str]) -> Tally:
    """One problem per code, no count: each code says "at least one"."""
    return Tally({code: 1 for code in exact(test, refused).counts}, exact=False)


def silent(test: list[int], refused: dict[int, str]) -> Tally:
    """A 400 and nothing else."""
    return Tally({}, exact=False)


STYLES: dict[str, Responder] = {"exact counts": exact, "codes only": at_least, "nothing": silent}


def settle(n: int, refused: dict[int, str], respond: Responder) -> int:
    """One refused batch of n SKUs run to its end; returns its calls, the first refused one
    included. Raises AssertionError if any SKU ends wrong (refused and applied, or neither)."""
    items = list(range(n))
    isolation = Isolation(items, respond(items, refused))
    calls, applied, found = 1, set[int](), dict[int, tuple[str, ...]]()
    while (test := isolation.next_test()) is not None:
        calls += 1
        if any(i in refused for i in test):
            isolation.failed(respond(test, refused))
        else:
            isolation.passed()
            applied.update(test)
        found.update((r.item, r.codes) for r in isolation.refusals())
    found.update((r.item, r.codes) for r in isolation.refusals())
    if set(found) != set(refused) or applied != set(items) - set(refused):
        raise AssertionError(f"wrong outcome for {n} SKUs with {sorted(refused)} refused")
    if respond is not silent and any(found[i][0] != code for i, code in refused.items()):
        raise AssertionError(f"wrong codes: {found} for {refused}")
    return calls


def batches(n: int, d: int, runs: int, codes: str = "ab") -> list[dict[int, str]]:
    """`runs` batches of n SKUs with d refused at random places (seeded by n and d)."""
    rng = random.Random(n * 1000 + d)
    return [{i: rng.choice(codes) for i in rng.sample(range(n), d)} for _ in range(runs)]


def bound(n: int, d: int) -> float:
    """The first (refused) call plus log2 C(n, d): what pass/fail answers cannot do without."""
    return 1 + math.log2(math.comb(n, d))


@functools.cache
def optimum(n: int, d: int) -> float:
    """The fewest tests, in expectation, of any strategy that sends one part of a group at a
    time and is told each refused part's count (known-good SKUs pooled for free), over every
    part size: an exact dynamic program over the hypergeometric outcomes."""
    if d in (0, n):
        return 0.0
    return min(_expected(n, d, t, optimum) for t in range(1, n))


@functools.cache
def halving(n: int, d: int) -> float:
    """The same, for the plan the worker follows with exact counts: always half."""
    if d in (0, n):
        return 0.0
    return _expected(n, d, n // 2, halving)


def _expected(n: int, d: int, t: int, then: Callable[[int, int], float]) -> float:
    total = 1.0
    for x in range(max(0, d - (n - t)), min(d, t) + 1):
        p = math.comb(d, x) * math.comb(n - d, t - x) / math.comb(n, t)
        total += p * (then(t, x) + then(n - t, d - x))
    return total


CASES = ((50, 1), (50, 2), (50, 5), (100, 1), (100, 3), (300, 1), (300, 5), (1500, 1), (1500, 10))


def table(runs: int = 200) -> str:
    lines = [
        "| SKUs | refused | bound 1 + log2 C(n,d) | "
        + " | ".join(STYLES)
        + " | exact counts: halving / best part size (DP, tests only) |",
        "|" + "---|" * (4 + len(STYLES)),
    ]
    for n, d in CASES:
        cells = [
            f"{mean(settle(n, r, f) for r in batches(n, d, runs)):.1f}" for f in STYLES.values()
        ]
        dp = f"{halving(n, d):.2f} / {optimum(n, d):.2f}" if n <= 100 else "-"
        lines.append(f"| {n:,} | {d} | {bound(n, d):.1f} | " + " | ".join(cells) + f" | {dp} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    print(table())
