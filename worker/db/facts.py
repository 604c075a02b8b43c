"""Refusal facts (see `worker.domain.facts`): recorded as the API refuses, read for a chunk's
line item before its plan, forgotten when the API accepts what they said it would refuse, and
pruned once expired."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, fields
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from worker.db.sql import Repo
from worker.domain.facts import Fact, FactKind

_COLUMNS = tuple(f.name for f in fields(Fact))


def _fact(row: Any) -> Fact:
    values = {name: getattr(row, name) for name in _COLUMNS}
    return Fact(**{**values, "kind": FactKind(row.kind)})


class FactRepository(Repo):
    def record(self, facts: Sequence[Fact], ttl_seconds: float) -> None:
        """One statement for any number of facts."""
        if not facts:
            return
        columns = ", ".join(_COLUMNS)
        placeholders = ", ".join(f":{name}" for name in _COLUMNS)
        self.session.execute(
            sa.text(
                f"INSERT INTO refusal_facts ({columns}, expires_at)"
                f" VALUES ({placeholders}, now() + make_interval(secs => :ttl))"
            ),
            [{**dict(zip(_COLUMNS, astuple(f), strict=True)), "ttl": ttl_seconds} for f in facts],
        )

    def for_line_item(
        self, line_item_id: int, skus: Sequence[str], accounts: Sequence[str]
    ) -> list[Fact]:
        """The live facts that may hold for these SKUs on this line item: the line item's own,
        and the SKUs' on other line items of the same accounts."""
        rows = self._exec(
            f"""
            SELECT {", ".join(_COLUMNS)} FROM refusal_facts
            WHERE expires_at > now()
              AND (line_item_id = :li
                   OR (account_id = ANY(:accounts) AND sku_id = ANY(:skus)))
            ORDER BY observed_at DESC
            """,
            li=line_item_id,
            skus=list(skus),
            accounts=list(accounts),
        )
        return [_fact(r) for r in rows]

    def forget_contradicted(
        self,
        line_item_id: int,
        accepted_bids: Sequence[tuple[str, str | None, Decimal]],
        added: Sequence[tuple[str, str | None]],
    ) -> None:
        """The API accepted these bids (sku, account, bid) and added these SKUs (sku, account):
        facts that said it would not are wrong now (a minimum lowered, a catalog grown)."""
        if accepted_bids:
            self._exec(
                """
                DELETE FROM refusal_facts f USING unnest(
                    CAST(:skus AS text[]), CAST(:accounts AS text[]), CAST(:bids AS numeric[])
                ) AS v(sku, account, bid)
                WHERE f.kind = 'min_bid' AND f.sku_id = v.sku
                  AND (f.line_item_id = :li OR f.account_id = v.account)
                  AND (f.refused_bid >= v.bid OR f.min_bid > v.bid)
                """,
                li=line_item_id,
                skus=[s for s, _, _ in accepted_bids],
                accounts=[a for _, a, _ in accepted_bids],
                bids=[b for _, _, b in accepted_bids],
            )
            self._exec(
                "DELETE FROM refusal_facts WHERE kind = 'no_bid_override' AND line_item_id = :li",
                li=line_item_id,
            )
        if added:
            self._exec(
                """
                DELETE FROM refusal_facts f USING unnest(
                    CAST(:skus AS text[]), CAST(:accounts AS text[])) AS v(sku, account)
                WHERE f.kind = 'not_in_catalog' AND f.sku_id = v.sku
                  AND (f.line_item_id = :li OR f.account_id = v.account)
                """,
                li=line_item_id,
                skus=[s for s, _ in added],
                accounts=[a for _, a in added],
            )

    def prune(self, batch: int = 5000) -> int:
        """Expired facts, a batch at a time; the caller commits."""
        return int(
            self._exec(
                """
                DELETE FROM refusal_facts WHERE id IN (
                    SELECT id FROM refusal_facts WHERE expires_at < now() LIMIT :batch)
                """,
                batch=batch,
            ).rowcount
        )

    def clear(self) -> None:
        """Every fact: a benchmark run or a test that must start as a first night would."""
        self._exec("DELETE FROM refusal_facts")
