from __future__ import annotations

from collections import Counter

from worker.simulator.faults import Fault, FaultSource, FaultSpec, LatencySpec


def test_quiet_spec_draws_nothing() -> None:
    source = FaultSource(1)
    assert source.draw(FaultSpec()) == (0.0, None)


def test_same_seed_same_faults() -> None:
    spec = FaultSpec(p_500=0.3, p_reset=0.3, latency=LatencySpec(distribution="exponential", ms=5))
    first, second = FaultSource(9), FaultSource(9)
    assert [first.draw(spec) for _ in range(50)] == [second.draw(spec) for _ in range(50)]


def test_probabilities_are_respected() -> None:
    source = FaultSource(4)
    spec = FaultSpec(p_500=0.25, p_503=0.25)
    counts = Counter(source.draw(spec)[1] for _ in range(4000))
    assert 800 < counts[Fault.ERROR_500] < 1200
    assert 800 < counts[Fault.ERROR_503] < 1200
    assert 1800 < counts[None] < 2200
    assert FaultSource(1).draw(FaultSpec(p_hang=1.0))[1] is Fault.HANG


def test_latency_distributions() -> None:
    source = FaultSource(2)
    constant = FaultSpec(latency=LatencySpec(distribution="constant", ms=40))
    assert source.draw(constant)[0] == 0.04
    uniform = FaultSpec(latency=LatencySpec(distribution="uniform", min_ms=10, max_ms=20))
    assert all(0.01 <= source.draw(uniform)[0] <= 0.02 for _ in range(100))
    capped = FaultSpec(latency=LatencySpec(distribution="exponential", ms=50, min_ms=5, max_ms=60))
    values = [source.draw(capped)[0] for _ in range(500)]
    assert all(0.005 <= v <= 0.06 for v in values)
    assert max(values) == 0.06
