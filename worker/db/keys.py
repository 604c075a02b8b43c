"""API key rows: only a key's SHA-256 is stored, with its name (the submitter) and a prefix."""

from __future__ import annotations

from typing import Any

from worker.db.records import ApiKeyRecord
from worker.db.sql import Repo


def _record(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        row.id, row.name, row.prefix, row.role, row.key_hash, row.created_at, row.revoked_at
    )


class KeyRepository(Repo):
    def insert(self, name: str, key_hash: str, prefix: str, role: str) -> int:
        return int(
            self._exec(
                "INSERT INTO api_keys (name, key_hash, prefix, role)"
                " VALUES (:name, :hash, :prefix, :role) RETURNING id",
                name=name,
                hash=key_hash,
                prefix=prefix,
                role=role,
            ).scalar_one()
        )

    def active(self, key_hash: str) -> ApiKeyRecord | None:
        """The unrevoked key with this hash."""
        row = self._exec(
            "SELECT * FROM api_keys WHERE key_hash = :hash AND revoked_at IS NULL", hash=key_hash
        ).first()
        return None if row is None else _record(row)

    def active_by_id(self, key_id: int) -> ApiKeyRecord | None:
        """The key with this id, unless it was revoked."""
        row = self._exec(
            "SELECT * FROM api_keys WHERE id = :id AND revoked_at IS NULL", id=key_id
        ).first()
        return None if row is None else _record(row)

    def all(self) -> list[ApiKeyRecord]:
        return [_record(r) for r in self._exec("SELECT * FROM api_keys ORDER BY id")]

    def revoke(self, key_id: int) -> bool:
        """False if there is no such key; revoking a revoked key keeps its first revocation."""
        row = self._exec(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = :id"
            " RETURNING id",
            id=key_id,
        ).first()
        return row is not None
