"""API keys: random, shown once, stored only as SHA-256, and checked in constant time.

A key is `pbk_` and 43 URL-safe characters (256 random bits), so a plain SHA-256 is as good as a
slow hash: there is nothing to guess. The key's row names its submitter, recorded on its jobs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker.db.repository import ApiKeyRecord, Repository

KEY_PREFIX = "pbk_"
SHOWN_PREFIX_LEN = 12
NAME_MAX_LEN = 200


@dataclass(frozen=True, slots=True)
class NewKey:
    id: int
    name: str
    key: str  # shown once, never stored


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(engine: Engine, name: str) -> NewKey:
    name = name.strip()
    if not 0 < len(name) <= NAME_MAX_LEN:
        raise ValueError(f"a key's name must have 1 to {NAME_MAX_LEN} characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with Session(engine) as session:
        key_id = Repository(session).insert_api_key(name, hash_key(key), key[:SHOWN_PREFIX_LEN])
        session.commit()
    return NewKey(key_id, name, key)


def submitter_for(engine: Engine, key: str) -> str | None:
    """The name of the live key `key`, or None."""
    presented = hash_key(key)
    with Session(engine) as session:
        found = Repository(session).active_api_key(presented)
    if found is None or not hmac.compare_digest(found[0], presented):
        return None
    return found[1]


def list_keys(engine: Engine) -> list[ApiKeyRecord]:
    with Session(engine) as session:
        return Repository(session).api_keys()


def revoke_key(engine: Engine, key_id: int) -> bool:
    with Session(engine) as session:
        found = Repository(session).revoke_api_key(key_id)
        session.commit()
    return found
