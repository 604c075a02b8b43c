"""Bids as people write them, in every message and description."""

from __future__ import annotations

from decimal import Decimal


def format_bid(bid: Decimal | None) -> str:
    """0.5000 → 0.50, 0.1234 stays, 100 → 100.00, None → none."""
    if bid is None:
        return "none"
    exponent = bid.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -2:
        return f"{bid:.2f}"
    return f"{bid.normalize():f}"
