"""API key rows: only a key's SHA-256 is stored, with its name (the submitter) and a prefix."""

from __future__ import annotations

from worker.db.records import ApiKeyRecord
from worker.db.sql import Repo


class KeyRepository(Repo):
    def insert(self, name: str, key_hash: str, prefix: str) -> int:
        return int(
            self._exec(
                "INSERT INTO api_keys (name, key_hash, prefix) VALUES (:name, :hash, :prefix)"
                " RETURNING id",
                name=name,
                hash=key_hash,
                prefix=prefix,
            ).scalar_one()
        )

    def active(self, key_hash: str) -> tuple[str, str] | None:
        """(stored hash, submitter name) of the unrevoked key with this hash."""
        row = self._exec(
            "SELECT key_hash, name FROM api_keys WHERE key_hash = :hash AND revoked_at IS NULL",
            hash=key_hash,
        ).first()
        return None if row is None else (row.key_hash, row.name)

    def all(self) -> list[ApiKeyRecord]:
        rows = self._exec(
            "SELECT id, name, prefix, created_at, revoked_at FROM api_keys ORDER BY id"
        ).all()
        return [ApiKeyRecord(r.id, r.name, r.prefix, r.created_at, r.revoked_at) for r in rows]

    def revoke(self, key_id: int) -> bool:
        """False if there is no such key; revoking a revoked key keeps its first revocation."""
        row = self._exec(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = :id"
            " RETURNING id",
            id=key_id,
        ).first()
        return row is not None
