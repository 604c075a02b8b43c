"""The one backoff: doubling from the base, capped, with full jitter when asked."""

from __future__ import annotations

from worker.domain.backoff import backoff


def test_it_doubles_and_is_capped() -> None:
    assert [backoff(n, base=10, cap=60) for n in range(5)] == [10, 20, 40, 60, 60]


def test_full_jitter_spans_floor_to_ceiling() -> None:
    assert backoff(3, base=0.5, cap=15, rand=lambda: 0.0) == 0.0
    assert backoff(3, base=0.5, cap=15, rand=lambda: 1.0) == 4.0
    assert backoff(0, base=5, cap=300, rand=lambda: 0.0, floor=5) == 5
    assert backoff(6, base=5, cap=300, rand=lambda: 1.0, floor=5) == 300
    assert backoff(2, base=5, cap=300, rand=lambda: 0.5, floor=5) == 12.5
