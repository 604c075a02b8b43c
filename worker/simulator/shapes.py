"""How a validation problem names its SKU, or counts the refused items it names none of.

Criteo publishes neither, so the simulator can play every plausible way (config `naming` for
the modes that name SKUs, `anonymous_count` for the modes that do not). Each naming shape gives
one clue only, so a client that reads only some of them is caught.
"""

from __future__ import annotations

from typing import Any, Literal

from worker.simulator.state import ItemProblem, anonymous_detail

Naming = Literal[
    "path+quote",
    "path",
    "pointer",
    "brackets",
    "dots",
    "path-key",
    "sku-value",
    "sku-key",
    "quoted",
    "double-quoted",
    "bare",
    "title",
    "field",
]
NAMINGS: tuple[Naming, ...] = Naming.__args__  # type: ignore[attr-defined]

AnonymousCount = Literal["detail", "entries", "none"]


def named(item: ItemProblem, shape: Naming) -> dict[str, Any]:
    """The `title`, `detail`, `source` (and any other field) of a problem naming its SKU:

    - `path+quote` (default): `source` `{"id": "data/3/id"}` and the SKU in single quotes in
      `detail` (`SKU 'abc-1' is not in the catalog of account '42'`);
    - `path`, `pointer`, `brackets`, `dots`: only the index, as `data/3/id`,
      `/data/3/attributes/bidOverride`, `data[3].id` or `data.3`, in a `source` value;
    - `path-key`: the index as a `source` key, `{"data[3]": "id"}`;
    - `sku-value`, `sku-key`: the SKU itself as a `source` value or key;
    - `quoted`, `double-quoted`, `bare`: only the SKU in `detail`, in single quotes, in double
      quotes, or without (`SKU abc-1 is not ...`);
    - `title`: only the SKU at the end of the title (`Product not in catalog: abc-1`);
    - `field`: only the SKU in a field of its own, `"productId": "abc-1"`.
    An item without a valid id can only be named by its index (`path`)."""
    field, index, sku = item.field, item.index, item.sku
    if not sku and shape not in _BY_INDEX:
        shape = "path"
    attribute = "id" if field == "id" else f"attributes/{field}"
    out: dict[str, Any] = {"title": item.title, "detail": item.unnamed_detail, "source": {}}
    sources = {
        "path+quote": {field: f"data/{index}/{attribute}"},
        "path": {field: f"data/{index}/{attribute}"},
        "pointer": {field: f"/data/{index}/{attribute}"},
        "brackets": {field: f"data[{index}].{attribute.replace('/', '.')}"},
        "dots": {field: f"data.{index}"},
        "path-key": {f"data[{index}]": field},
        "sku-value": {field: sku},
        "sku-key": {sku: field},
    }
    out["source"] = sources.get(shape, {})
    if shape == "title":
        out["title"] = f"{item.title}: {sku}"
    elif shape == "field":
        out["productId"] = sku
    details = {
        "path+quote": item.detail,
        "quoted": item.detail,
        "double-quoted": item.detail.replace("'", '"'),
        "bare": item.detail.replace("'", ""),
    }
    out["detail"] = details.get(shape, out["detail"])
    return out


_BY_INDEX = ("path+quote", "pointer", "brackets", "dots", "path-key")


def anonymous(problems: list[ItemProblem], style: AnonymousCount) -> list[dict[str, Any]]:
    """The `code`, `title` and `detail` of problems naming no SKU, for the refused items:

    - `detail` (default): one problem per code, its count opening the detail
      (`2 products are not in the account catalog`);
    - `entries`: one problem per refused item, each naming nothing;
    - `none`: one problem per code and no number (`Products are not in the account catalog`).
    """
    if style == "entries":
        return [{"code": p.code, "title": p.title, "detail": p.unnamed_detail} for p in problems]
    counts: dict[str, int] = {}
    titles: dict[str, str] = {}
    for p in problems:
        counts[p.code] = counts.get(p.code, 0) + 1
        titles[p.code] = p.title
    return [
        {
            "code": code,
            "title": titles[code],
            "detail": anonymous_detail(code, n if style == "detail" else None),
        }
        for code, n in counts.items()
    ]
