"""API keys: random, shown once, stored only as SHA-256, checked in constant time.

A key is `pbk_` and 43 URL-safe characters (256 random bits), so a plain SHA-256 is as good as a
slow hash: there is nothing to guess. The key's row names its submitter, recorded on its jobs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker.db.keys import KeyRepository
from worker.domain.access import Caller
from worker.domain.enums import Role
from worker.domain.validation import shown, text_problem
from worker.jobs.documents import ApiKey, NewApiKey
from worker.jobs.errors import InvalidField

KEY_PREFIX = "pbk_"
SHOWN_PREFIX_LEN = 12
NAME_MAX_LEN = 200


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def name_problem(name: str) -> str | None:
    """Why a submitter's name cannot be stored, or None."""
    if not 0 < len(name) <= NAME_MAX_LEN:
        return f"must have 1 to {NAME_MAX_LEN} characters: {shown(name)}"
    problem = text_problem(name)
    return None if problem is None else f"{problem}: {shown(name)}"


class ApiKeys:
    """The keys of the HTTP API and the console: `Jobs(...).keys`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, role: Role = Role.SUBMIT) -> NewApiKey:
        """A new key for `name` (the submitter on its jobs), allowed what `role` allows."""
        name = name.strip()
        if problem := name_problem(name):
            raise InvalidField("name", problem)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with Session(self.engine) as session:
            key_id = KeyRepository(session).insert(
                name, hash_key(key), key[:SHOWN_PREFIX_LEN], role.value
            )
            session.commit()
        return NewApiKey(id=key_id, name=name, role=role, key=key)

    def list(self) -> list[ApiKey]:
        with Session(self.engine) as session:
            return [
                ApiKey(
                    id=k.id,
                    name=k.name,
                    prefix=k.prefix,
                    role=Role(k.role),
                    created_at=k.created_at,
                    revoked_at=k.revoked_at,
                )
                for k in KeyRepository(session).all()
            ]

    def revoke(self, key_id: int) -> bool:
        """False if there is no such key."""
        with Session(self.engine) as session:
            found = KeyRepository(session).revoke(key_id)
            session.commit()
        return found

    def caller(self, key: str) -> Caller | None:
        """Who the live key `key` is (its name and role), or None."""
        signed_in = self.sign_in(key)
        return None if signed_in is None else signed_in[1]

    def sign_in(self, key: str) -> tuple[int, Caller] | None:
        """The live key's id and who it is: what a console session keeps instead of the key."""
        presented = hash_key(key)
        with Session(self.engine) as session:
            found = KeyRepository(session).active(presented)
        if found is None or not hmac.compare_digest(found.key_hash, presented):
            return None
        return found.id, Caller(found.name, Role(found.role))

    def caller_by_id(self, key_id: int) -> Caller | None:
        """Who the key `key_id` is while it is not revoked: a console session asks on every
        request, so revoking a key signs its sessions out."""
        with Session(self.engine) as session:
            found = KeyRepository(session).active_by_id(key_id)
        return None if found is None else Caller(found.name, Role(found.role))
