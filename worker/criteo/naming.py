"""Which sent SKU a problem names, read wherever the API may have put it (pure, no I/O).

Criteo documents no per-item id in a problem: a bad SKU may be named by its index in the sent
body (`data/3/id`, `/data/3/attributes/bidOverride`, `data[3].id`, `data.3`) or by the SKU
itself, in a `source` key or value, in `detail` or `title`, quoted or not, or in a field we do
not know. `resolve` reads all of them and answers at most one SKU:

1. an index into the sent body, in any of those syntaxes and any field, beats every text match;
   indices naming two different SKUs name none;
2. otherwise the strongest text match wins: a whole field equal to a SKU, then a mention right
   after a label (`SKU x`, `product 'x'`), then a quoted one, then a bare one; two different
   SKUs at the same strength name none (the problem is then anonymous);
3. a SKU that is only a number or only letters (`12`, `0.50`, `id`) matches only as a whole
   field, quoted or labelled, so "capped at 120", "min bid 0.50" or a word of the text never
   blame SKU `120`, `0.50` or `id`.

Matches are whole tokens: the characters around one are separators (whitespace, quotes,
brackets, `,;:=/#`) or sentence-final punctuation followed by a separator or the end. Each text
is tokenised once and tokens are looked up in a dict; only SKUs that contain a separator are
searched for as substrings, so a batch of 1,500 SKUs with hundreds of problems stays linear.
Problems about the request as a whole (the ids cap) must be recognised before this is asked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

_QUOTES = "'\"`\u2018\u2019\u201c\u201d\u00ab\u00bb"
_SEPARATORS = frozenset(" \t\r\n\f\v()[]{}<>,;:=/#" + _QUOTES)
_FINAL = ".!?"
_TOKEN = re.compile(r"[^\s()\[\]{}<>,;:=/#" + _QUOTES + r"]+")
_NUMBER_LIKE = re.compile(r"^[+-]?\d+(?:[.,]\d+)*%?$")
_INDEX = re.compile(r"(?<![A-Za-z0-9_])data(?:\[(\d+)\]|[/.](\d+))(?![0-9])")
_LABELS = frozenset(
    {"sku", "skus", "skuid", "sku_id", "sku-id", "product", "products", "productid"}
    | {"product_id", "product-id", "id"}
)
#: Names of the body's own fields: as a `source` key they say where, not which.
_FIELD_NAMES = frozenset({"id", "ids", "type", "attributes", "bidOverride", "status", "data"})
#: Problem fields that never name a SKU.
_NOT_TEXT = frozenset({"traceId", "type", "code", "status"})

# Strengths of a text match, weakest first.
_BARE, _QUOTED, _LABELLED, _LABELLED_QUOTED, _WHOLE_FIELD = 1, 2, 3, 4, 5


class SentSkus:
    """The SKUs of one request in body order, indexed once for every problem of its answer.

    `request_path` is the path the request went to: a problem's `instance` usually repeats it,
    and its segments (`products`, `append`, the line item id) must not be taken for SKUs.
    """

    def __init__(self, sent: Sequence[str], request_path: str = "") -> None:
        self.order = list(sent)
        self.position: dict[str, int] = {}
        for index, sku in enumerate(sent):
            self.position.setdefault(sku, index)
        self.awkward = [
            sku for sku in self.position if not sku or any(c in _SEPARATORS for c in sku)
        ]
        self.request_path = request_path

    def __len__(self) -> int:
        return len(self.order)

    def resolve(self, problem: Mapping[str, Any]) -> str | None:
        """The one sent SKU the problem names, or None when it names none (or several)."""
        if not self.order:
            return None
        texts = list(_texts(problem, self.request_path))
        indices = {int(a or b) for text, _ in texts for a, b in _INDEX.findall(text)}
        named = {self.order[i] for i in indices if i < len(self.order)}
        if named:
            return named.pop() if len(named) == 1 else None
        best: dict[str, int] = {}
        for text, whole in texts:
            if whole and text in _FIELD_NAMES:
                continue
            if whole and text in self.position:
                best[text] = _WHOLE_FIELD
                continue
            for sku, strength in self._mentions(text):
                if strength > best.get(sku, 0):
                    best[sku] = strength
        if not best:
            return None
        top = max(best.values())
        winners = [sku for sku, strength in best.items() if strength == top]
        return winners[0] if len(winners) == 1 else None

    def _mentions(self, text: str) -> Iterator[tuple[str, int]]:
        previous = ""
        for match in _TOKEN.finditer(text):
            token = match.group()
            sku = token if token in self.position else None
            end = match.end()
            if sku is None and token[-1] in _FINAL:
                stripped = token.rstrip(_FINAL)
                if stripped in self.position:
                    sku, end = stripped, match.start() + len(stripped)
            if sku is not None:
                strength = _strength(text, match.start(), end, previous, sku)
                if strength:
                    yield sku, strength
            previous = token
        for sku in self.awkward:
            yield from self._substring_mentions(text, sku)

    def _substring_mentions(self, text: str, sku: str) -> Iterator[tuple[str, int]]:
        """A SKU with separators inside (`a b`, `x/1`) cannot be a token: search for it."""
        if not sku:
            return
        start = text.find(sku)
        while start != -1:
            end = start + len(sku)
            if _bounded(text, start, end):
                before = _TOKEN.findall(text[:start])
                strength = _strength(text, start, end, before[-1] if before else "", sku)
                if strength:
                    yield sku, strength
            start = text.find(sku, start + 1)


def _texts(problem: Mapping[str, Any], request_path: str) -> Iterator[tuple[str, bool]]:
    """Every string of the problem that could name a SKU, and whether it is a whole field."""
    for key, value in problem.items():
        if key in _NOT_TEXT:
            continue
        if key == "source" and isinstance(value, Mapping):
            for field, path in value.items():
                yield str(field), True
                yield from _strings(path)
        elif key == "instance" and isinstance(value, str):
            yield (value.replace(request_path, " ") if request_path else value), False
        elif key in ("title", "detail") and isinstance(value, str):
            yield value, False
        else:
            yield from _strings(value)


def _strings(value: Any, depth: int = 0) -> Iterator[tuple[str, bool]]:
    if isinstance(value, str):
        yield value, True
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value), True
    elif depth < 3 and isinstance(value, Mapping):
        for key, inner in value.items():
            yield str(key), True
            yield from _strings(inner, depth + 1)
    elif depth < 3 and isinstance(value, list | tuple):
        for inner in value:
            yield from _strings(inner, depth + 1)


def _bounded(text: str, start: int, end: int) -> bool:
    """Separators (or the ends) on both sides; a final `.`, `!` or `?` counts as one."""
    if start > 0 and text[start - 1] not in _SEPARATORS:
        return False
    while end < len(text) and text[end] in _FINAL:
        end += 1
        if end == len(text) or text[end] in _SEPARATORS:
            return True
    return end == len(text) or text[end] in _SEPARATORS


def _strength(text: str, start: int, end: int, previous: str, sku: str) -> int:
    quoted = start > 0 and end < len(text) and text[start - 1] in _QUOTES and text[end] in _QUOTES
    labelled = previous.rstrip(_FINAL).lower() in _LABELS
    if labelled:
        return _LABELLED_QUOTED if quoted else _LABELLED
    if quoted:
        return _QUOTED
    return 0 if _NUMBER_LIKE.match(sku) or sku.isalpha() else _BARE


_IDS_CAP = re.compile(r"\bcapped\s+(?:for|at|to)\s+(\d+)\s+(?:unique\s+)?ids?\b", re.IGNORECASE)
#: Codes of problems about a request as a whole, never about one of its items.
WHOLE_REQUEST_CODES = frozenset({"exceeded-ids-cap", "invalid-request-body"})


def ids_cap(problem: Mapping[str, Any]) -> int | None:
    """N of the documented "Requests are capped for N unique ids, M were provided", or 0 when
    the problem is the ids cap without a readable N; None when it is another problem."""
    texts = f"{problem.get('title') or ''} {problem.get('detail') or ''}"
    match = _IDS_CAP.search(texts)
    if match:
        return int(match.group(1))
    return 0 if problem.get("code") == "exceeded-ids-cap" else None


def about_whole_request(problem: Mapping[str, Any]) -> bool:
    """Problems no SKU may be blamed for: recognised before any SKU is looked for."""
    return problem.get("code") in WHOLE_REQUEST_CODES or ids_cap(problem) is not None


def reported_count(problem: Mapping[str, Any], size: int) -> int | None:
    """How many refused items an anonymous problem reports, as in "3 bid overrides are below
    the min bid": a whole number from 1 to `size` opening its detail (else its title). A number
    anywhere else is not read as a count: it could be a cap, a bid or an id, and a count taken
    wrongly could fail good SKUs; without one the problem says "at least one"."""
    for key in ("detail", "title"):
        text = problem.get(key)
        first = _TOKEN.search(text) if isinstance(text, str) else None
        number = first.group().rstrip(_FINAL) if first else ""
        if number.isdigit() and 1 <= int(number) <= size:
            return int(number)
    return None


def integers(text: str) -> list[int]:
    """Every whole number in a text, as tokens (not the digits of `0.50` or `sku12`)."""
    return [int(t) for t in (t.rstrip(_FINAL) for t in _TOKEN.findall(text)) if t.isdigit()]
