from __future__ import annotations

import pytest
from pydantic import ValidationError

from worker.simulator.config import SimConfig
from worker.simulator.faults import ENDPOINTS


def test_defaults() -> None:
    config = SimConfig()
    assert config.validation_mode == "a"
    assert config.products_cap == 500
    assert config.rate_limit_per_minute == 250
    assert config.token_ttl_seconds == 900
    assert config.live_versions == ["2026-01", "2026-07", "2027-01"]
    assert config.dead_versions[0] == "2022-07"
    assert config.dead_versions[-1] == "2025-10"
    assert len(config.dead_versions) == 14
    assert set(config.faults) == set(ENDPOINTS)


def test_star_applies_to_every_endpoint_and_merges() -> None:
    config = SimConfig().updated({"faults": {"get": {"p_500": 0.1}}})
    config = config.updated({"faults": {"*": {"p_503": 0.2}}})
    assert all(config.faults[e].p_503 == 0.2 for e in ENDPOINTS)
    assert config.faults["get"].p_500 == 0.1
    assert config.faults["append"].p_500 == 0.0


def test_update_leaves_the_original_alone() -> None:
    original = SimConfig()
    changed = original.updated({"validation_mode": "warn-anonymous"})
    assert changed.validation_mode == "d"
    assert original.validation_mode == "a"


@pytest.mark.parametrize(
    "bad",
    [
        {"validation_mode": "x"},
        {"faults": {"nope": {}}},
        {"rate_limit_per_minute": 0},
        {"naming": "telepathy"},
        {"anonymous_count": "some"},
        {"ids_cap": 0},
        {"page_cap": 0},
        {"max_page_limit": -1},
        {"page_meta": "partial"},
        {"max_body_bytes": 0},
    ],
)
def test_invalid_updates_raise(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SimConfig().updated(bad)
