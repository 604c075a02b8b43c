"""OAuth client-credentials tokens: issued per client, valid for a configurable lifetime."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from enum import StrEnum


class TokenCheck(StrEnum):
    MISSING = "authorization-token-missing"
    INVALID = "authorization-token-invalid"
    EXPIRED = "authorization-token-expired"


@dataclass(slots=True)
class _Token:
    client_id: str
    expires_at: float


class TokenStore:
    """Expired tokens are remembered, so they can be told apart from invalid ones."""

    def __init__(self) -> None:
        self._tokens: dict[str, _Token] = {}

    def issue(self, client_id: str, ttl_seconds: int) -> str:
        token = secrets.token_urlsafe(32)
        self._tokens[token] = _Token(client_id, time.monotonic() + ttl_seconds)
        return token

    def check(self, authorization: str | None) -> str | TokenCheck:
        """The client_id a bearer `Authorization` header belongs to, or why it is refused."""
        if not authorization:
            return TokenCheck.MISSING
        scheme, _, value = authorization.partition(" ")
        token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            return TokenCheck.INVALID
        if token.expires_at <= time.monotonic():
            return TokenCheck.EXPIRED
        return token.client_id

    def expire(self, authorization: str) -> None:
        """End a token now (the "token expires early" fault)."""
        token = self._tokens.get(authorization.partition(" ")[2].strip())
        if token is not None:
            token.expires_at = time.monotonic()
