"""What the client returns: plain values, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

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
    """One entry of the API's `errors` or `warnings`, with the SKU it concerns when we can tell."""

    type: str
    code: str
    title: str
    detail: str
    trace_id: str | None
    status: int | None
    source: dict[str, str]
    sku_id: str | None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A successful write. `has_body` is False for a 204, which proves nothing per SKU."""

    status: int
    warnings: tuple[Problem, ...]
    trace_id: str | None
    has_body: bool


_SOURCE_INDEX = re.compile(r"^/?data(?:/|\[)(\d+)(?:\]|/|$)")
_QUOTED = re.compile(r"'([^']+)'")


def resolve_sku(source: Mapping[str, str], detail: str, sent: Sequence[str]) -> str | None:
    """The SKU a problem is about: a `source` path indexing the sent body, else a quoted SKU."""
    for path in source.values():
        match = _SOURCE_INDEX.match(path)
        if match and int(match.group(1)) < len(sent):
            return sent[int(match.group(1))]
    if sent:
        known = set(sent)
        for quoted in _QUOTED.findall(detail):
            if quoted in known:
                return str(quoted)
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def parse_problem(raw: Mapping[str, Any], sent: Sequence[str]) -> Problem:
    source_raw = raw.get("source")
    source = (
        {str(k): _text(v) for k, v in source_raw.items()} if isinstance(source_raw, dict) else {}
    )
    detail = _text(raw.get("detail"))
    status = raw.get("status")
    trace = raw.get("traceId")
    return Problem(
        type=_text(raw.get("type")),
        code=_text(raw.get("code")),
        title=_text(raw.get("title")),
        detail=detail,
        trace_id=str(trace) if trace else None,
        status=int(status) if isinstance(status, int | str) and str(status).isdigit() else None,
        source=source,
        sku_id=resolve_sku(source, detail, sent),
    )


def parse_problems(body: Any, key: str, sent: Sequence[str]) -> tuple[Problem, ...]:
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
