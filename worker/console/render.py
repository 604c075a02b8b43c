"""Jinja2 templates for the console, and the few filters that make numbers and times readable.

Autoescaping is on for every template; the only markup built in Python is the `<time>` element,
from values this module formats itself. Times are written in UTC (shown on hover); the page's
script rewrites their text into the viewer's time zone.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from worker.domain.derive import REASON_TEXT
from worker.domain.money import format_bid

NONE = "\u2013"  # an en dash: no value
STATIC_DIR = Path(str(files("worker.console") / "static"))


def _version() -> str:
    """Changes when a static file changes: their URLs carry it, so browsers may cache them."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


STATIC_VERSION = _version()


def number(value: int | float | None) -> str:
    return NONE if value is None else f"{value:,}"


def when(value: datetime | None, empty: str = NONE, *, short: bool = False) -> Markup:
    """A `<time>` element: UTC in its text and title, the viewer's zone once the script ran
    (`short`: to the minute, the zone named in the column's header)."""
    if value is None:
        return escape(empty)
    utc = value.astimezone(UTC)
    full = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    text = utc.strftime("%Y-%m-%d %H:%M") if short else full
    return Markup('<time datetime="{}" title="{}"{}>{}</time>').format(
        utc.isoformat(timespec="seconds").replace("+00:00", "Z"),
        full,
        Markup(' data-short=""') if short else "",
        text,
    )


def bid(value: str | None) -> str:
    """0.8 → 0.80, as everywhere else in promobulk; none when there is no bid override."""
    return format_bid(None if value is None else Decimal(value))


def change(
    bid_before: str | None, before: str | None, bid_after: str | None, after: str | None
) -> str:
    """Before → after, naming only what differs: `bid 1.12 → 0.80`, `active → paused`,
    `absent → active, bid 0.35`."""
    if before is None and after is None:
        return NONE
    if before is None or after is None:
        left = "absent" if before is None else f"{before}, bid {bid(bid_before)}"
        right = "absent" if after is None else f"{after}, bid {bid(bid_after)}"
        return f"{left} → {right}"
    parts = []
    if before != after:
        parts.append(f"{before} → {after}")
    if bid_before != bid_after or before == after:
        parts.append(f"bid {bid(bid_before)} → {bid(bid_after)}")
    return ", ".join(parts)


def duration(seconds: float | None) -> str:
    """1 h 02 min, 4 min 05 s, 12 s."""
    if seconds is None:
        return NONE
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def percent(part: float, whole: float) -> float:
    return 0.0 if not whole else round(100 * part / whole, 1)


def static_url(name: str) -> str:
    return f"/static/{name}?v={STATIC_VERSION}"


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("worker.console", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(number=number, when=when, duration=duration, bid=bid)
    env.globals.update(
        static=static_url,
        percent=percent,
        now=lambda: datetime.now(UTC),
        change=change,
        reason_text={reason.value: text for reason, text in REASON_TEXT.items()},
    )
    return env


def page(env: Environment, template: str, context: dict[str, Any]) -> str:
    return env.get_template(template).render(context)
