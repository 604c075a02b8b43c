"""Text cells that a spreadsheet will not run as formulas, and back.

An exported cell starting with `= + - @`, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets (OWASP "CSV injection"): it gets a leading `'`. A cell that already
starts with `'` followed by one of those gets one more, so that `unescape_cell` is the exact
inverse and an exported file can be submitted again without changing a single SKU. Numbers are
never passed through here: they are written as numbers.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(text: str) -> str:
    if text.startswith(FORMULA_STARTS) or (text.startswith("'") and _escaped(text)):
        return "'" + text
    return text


def unescape_cell(text: str) -> str:
    return text[1:] if _escaped(text) else text


def _escaped(text: str) -> bool:
    """`'` followed by a formula start, or by another such escaped text."""
    rest = text[1:]
    return text.startswith("'") and (
        rest.startswith(FORMULA_STARTS) or (rest.startswith("'") and _escaped(rest))
    )
