"""What the client returns: plain values, no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from worker.criteo.naming import SentSkus, about_whole_request, reported_count

PRODUCT_TYPE = "RetailMediaPromotedProduct"
PRODUCT_STATUSES = frozenset({"active", "paused", "unknown"})


@dataclass(frozen=True, slots=True)
class ProductState:
    sku_id: str
    bid_override: Decimal | None
    status: str


@dataclass(frozen=True, slots=True)
class ProductWrite:
    sku_id: str
    bid_override: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One entry of the API's `errors` or `warnings`, with the SKU it concerns when we can tell.

    `count` is the number of refused items the problem reports when it names none (see
    `naming.reported_count`); `whole_request` marks a problem about the request itself (the ids
    cap, a malformed body), which no SKU is ever blamed for.
    """

    type: str
    code: str
    title: str
    detail: str
    trace_id: str | None
    status: int | None
    source: dict[str, str]
    sku_id: str | None
    count: int | None = None
    whole_request: bool = False


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A successful write. `has_body` is False for a 204, which proves nothing per SKU."""

    status: int
    warnings: tuple[Problem, ...]
    trace_id: str | None
    has_body: bool


def write_entry(sku_id: str, bid_override: Decimal | None = None) -> dict[str, Any]:
    """One item of a write's `data`: the bid goes only on an append, and only when given."""
    entry: dict[str, Any] = {"id": sku_id, "type": PRODUCT_TYPE}
    if bid_override is not None:
        entry["attributes"] = {"bidOverride": bid_override}
    return entry


def encode_body(entries: Sequence[Mapping[str, Any]]) -> bytes:
    """A write's body, compact (more items fit a byte limit). A bid a JSON number cannot carry
    exactly raises ValueError."""
    return _compact({"data": entries}).encode()


def entry_bytes(sku_id: str, bid_override: Decimal | None = None) -> int:
    """An item's share of a write's body, its comma included (for cutting to a byte limit)."""
    return len(_compact(write_entry(sku_id, bid_override)).encode()) + 1


def _compact(value: object) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _json_default(value: object) -> float:
    """Bids go out as JSON numbers; refuse one a float would alter rather than send it changed."""
    if isinstance(value, Decimal):
        number = float(value)
        if Decimal(repr(number)) != value:
            raise ValueError(f"bid {value} cannot be sent exactly as a JSON number")
        return number
    raise TypeError(f"cannot encode {type(value).__name__}")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def parse_problem(raw: Mapping[str, Any], sent: SentSkus) -> Problem:
    source_raw = raw.get("source")
    source = (
        {str(k): _text(v) for k, v in source_raw.items()} if isinstance(source_raw, dict) else {}
    )
    status = raw.get("status")
    trace = raw.get("traceId")
    whole = about_whole_request(raw)
    sku = None if whole else sent.resolve(raw)
    return Problem(
        type=_text(raw.get("type")),
        code=_text(raw.get("code")),
        title=_text(raw.get("title")),
        detail=_text(raw.get("detail")),
        trace_id=str(trace) if trace else None,
        status=int(status) if isinstance(status, int | str) and str(status).isdigit() else None,
        source=source,
        sku_id=sku,
        count=None if whole or sku is not None else reported_count(raw, len(sent)),
        whole_request=whole,
    )


def parse_problems(body: Any, key: str, sent: SentSkus) -> tuple[Problem, ...]:
    """The problems under `key` ("errors" or "warnings") of a decoded envelope; () if none."""
    if not isinstance(body, dict):
        return ()
    entries = body.get(key)
    if not isinstance(entries, list):
        return ()
    return tuple(parse_problem(e, sent) for e in entries if isinstance(e, dict))


def parse_product(raw: Mapping[str, Any]) -> ProductState:
    attributes = raw.get("attributes")
    attrs: Mapping[str, Any] = attributes if isinstance(attributes, dict) else {}
    bid = attrs.get("bidOverride")
    status = _text(attrs.get("status")).lower()
    return ProductState(
        sku_id=_text(raw.get("id") or attrs.get("id")),
        bid_override=None if bid is None else Decimal(str(bid)),
        status=status if status in PRODUCT_STATUSES else "unknown",
    )
