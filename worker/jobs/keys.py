"""API keys: random, shown once, stored only as SHA-256, checked in constant time.

A key is `pbk_` and 43 URL-safe characters (256 random bits), so a plain SHA-256 is as good as a
slow hash: there is nothing to guess. The key's row names its submitter, recorded on its jobs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "pbk_"
SHOWN_PREFIX_LEN = 12
NAME_MAX_LEN = 200


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same_hash(stored: str, presented: str) -> bool:
    return hmac.compare_digest(stored, presented)
