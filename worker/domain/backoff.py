"""How long to wait before trying again: the one backoff of the product.

Used by the API client between retries of a call, by the runner for a parked chunk and by the
completion notifications between delivery attempts.
"""

from __future__ import annotations

from collections.abc import Callable


def backoff(
    attempt: int,
    *,
    base: float,
    cap: float,
    rand: Callable[[], float] | None = None,
    floor: float = 0.0,
) -> float:
    """The wait after failure number `attempt` (0 for the first): `base` doubling each time,
    at most `cap`. With `rand`, full jitter: uniform between `floor` and that ceiling, so
    retries of one outage do not return together."""
    ceiling = min(cap, base * 2.0**attempt)
    if rand is None:
        return ceiling
    return floor + rand() * max(ceiling - floor, 0.0)
