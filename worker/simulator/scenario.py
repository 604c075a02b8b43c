"""Scenario files: who may call the simulator, and the accounts, catalogs and line items it holds.

The JSON file format is exactly these models, so a scenario can be written by hand, generated from a
seed, or taken from `GET /_sim/state` and loaded back.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, PlainSerializer

#: Money as an exact decimal in memory, a JSON number on the wire (like the real API).
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]

DEFAULT_CLIENT_ID = "promobulk-demo"
DEFAULT_CLIENT_SECRET = "demo+secret/with=chars"  # noqa: S105 - a well-known demo secret
READONLY_CLIENT_ID = "promobulk-readonly"
READONLY_CLIENT_SECRET = "read+only/secret=="  # noqa: S105
NOCONSENT_CLIENT_ID = "promobulk-noconsent"
NOCONSENT_CLIENT_SECRET = "no+consent/secret="  # noqa: S105


class ClientSpec(BaseModel):
    """An API application: its credentials, the accounts it has consent for, and its scope."""

    client_id: str
    client_secret: str
    accounts: list[str] = Field(default_factory=list)
    scope: Literal["manage", "read"] = "manage"


class CatalogEntry(BaseModel):
    sku: str
    minBid: Money


class ProductSpec(BaseModel):
    sku: str
    bidOverride: Money | None = None
    status: Literal["active", "paused"] = "active"


class LineItemSpec(BaseModel):
    id: int
    kind: Literal["auction", "preferred_deals"] = "auction"
    products: list[ProductSpec] = Field(default_factory=list)


class AccountSpec(BaseModel):
    id: str
    catalog: list[CatalogEntry] = Field(default_factory=list)
    line_items: list[LineItemSpec] = Field(default_factory=list)


class Scenario(BaseModel):
    clients: list[ClientSpec] = Field(default_factory=list)
    accounts: list[AccountSpec] = Field(default_factory=list)

    @classmethod
    def from_file(cls, path: Path) -> Scenario:
        return cls.model_validate_json(path.read_bytes())


_MIN_BIDS = [
    Decimal("0.10"),
    Decimal("0.15"),
    Decimal("0.20"),
    Decimal("0.25"),
    Decimal("0.30"),
    Decimal("0.35"),
    Decimal("0.40"),
    Decimal("0.45"),
    Decimal("0.50"),
]


def generate(
    seed: int,
    line_items: int = 50,
    skus_per_line_item: int = 100,
    catalog_extra: int = 50,
    accounts: int = 2,
    preferred_deals_every: int = 10,
) -> Scenario:
    """A deterministic scenario: the same arguments always give the same scenario.

    Each account's catalog holds `skus_per_line_item + catalog_extra` SKUs, so every line item has
    `catalog_extra` catalog SKUs it does not promote yet. Every `preferred_deals_every`-th line item
    is a preferred-deals one (no bid overrides). Line item ids are large, like Criteo's int64 ids.
    """
    rng = random.Random(seed)
    account_ids = [str(100_000 + seed % 1_000 * 1_000 + a) for a in range(accounts)]
    catalogs: list[list[CatalogEntry]] = []
    for a in range(accounts):
        size = skus_per_line_item + catalog_extra
        catalogs.append(
            [
                CatalogEntry(sku=f"sku-{a}-{n:06d}", minBid=rng.choice(_MIN_BIDS))
                for n in range(size)
            ]
        )
    specs: list[list[LineItemSpec]] = [[] for _ in range(accounts)]
    base_id = 2_465_695_028_000_000_000 + (seed % 1_000_000) * 1_000_000
    for i in range(line_items):
        a = i % accounts
        kind: Literal["auction", "preferred_deals"] = (
            "preferred_deals"
            if preferred_deals_every and i % preferred_deals_every == 1
            else "auction"
        )
        chosen = rng.sample(catalogs[a], skus_per_line_item)
        products = []
        for entry in chosen:
            bid: Decimal | None = None
            if kind == "auction" and rng.random() < 0.5:
                bid = entry.minBid + Decimal(rng.randrange(0, 100)) / 100
            status: Literal["active", "paused"] = "paused" if rng.random() < 0.1 else "active"
            products.append(ProductSpec(sku=entry.sku, bidOverride=bid, status=status))
        specs[a].append(LineItemSpec(id=base_id + i, kind=kind, products=products))
    return Scenario(
        clients=[
            ClientSpec(
                client_id=DEFAULT_CLIENT_ID,
                client_secret=DEFAULT_CLIENT_SECRET,
                accounts=account_ids,
                scope="manage",
            ),
            ClientSpec(
                client_id=READONLY_CLIENT_ID,
                client_secret=READONLY_CLIENT_SECRET,
                accounts=account_ids,
                scope="read",
            ),
            ClientSpec(
                client_id=NOCONSENT_CLIENT_ID,
                client_secret=NOCONSENT_CLIENT_SECRET,
                accounts=[],
                scope="manage",
            ),
        ],
        accounts=[
            AccountSpec(id=account_ids[a], catalog=catalogs[a], line_items=specs[a])
            for a in range(accounts)
        ],
    )
