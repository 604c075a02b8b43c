"""Listings a page at a time: cursors opaque to callers, a keyset underneath."""

from __future__ import annotations

import base64
import binascii

from worker.jobs.errors import InvalidQuery


def encode_cursor(tag: str, key: int) -> str:
    return base64.urlsafe_b64encode(f"{tag}:{key}".encode()).decode().rstrip("=")


def decode_cursor(tag: str, cursor: str | None) -> int | None:
    """The keyset of a cursor this listing (`tag`) gave; InvalidQuery for any other text."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, key = raw.split(":")
        if kind == tag and key.isascii() and key.isdigit():
            return int(key)
    except (binascii.Error, UnicodeError, ValueError):
        pass
    raise InvalidQuery(f"cursor {cursor[:40]!r} is not one this listing gave")


def page_size(limit: int, most: int) -> int:
    if not 1 <= limit <= most:
        raise InvalidQuery(f"limit must be between 1 and {most}")
    return limit
