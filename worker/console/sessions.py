"""Signed session cookies and CSRF tokens, with one server secret and nothing stored.

A session names the API key it was opened with by its id, never the key itself: the browser
keeps `payload.signature` (HMAC-SHA256 of the payload under the console secret) in an HttpOnly,
SameSite=Strict cookie, and every request asks whether that key is still live, so revoking a
key signs its sessions out at once. A CSRF token is an HMAC of the session's random id; the
sign-in form, which has no session yet, gets one from a short-lived pre-session cookie.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from worker.domain.enums import Role

SESSION_COOKIE = "promobulk_session"
PRESESSION_COOKIE = "promobulk_presession"
SESSION_SECONDS = 12 * 3600  # a working day; then sign in again
PRESESSION_SECONDS = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """Who signed in: the key's id (checked on every request), its name and role."""

    sid: str
    key_id: int
    name: str
    role: Role
    expires: int


class Signer:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the console secret must have at least 16 bytes")
        self._secret = secret

    def _mac(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose.encode() + b"|" + data, hashlib.sha256).digest()

    def _seal(self, purpose: str, payload: dict[str, object]) -> str:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(body)}.{_b64(self._mac(purpose, body))}"

    def _open(self, purpose: str, token: str) -> dict[str, object] | None:
        body_text, _, mac_text = token.partition(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            return None
        payload = json.loads(body)
        if not isinstance(payload, dict) or int(payload.get("exp", 0)) < time.time():
            return None
        return payload

    def new_session(self, key_id: int, name: str, role: Role) -> tuple[ConsoleSession, str]:
        """A fresh session (a new random id: no fixation) and its cookie value."""
        session = ConsoleSession(
            secrets.token_urlsafe(16), key_id, name, role, int(time.time()) + SESSION_SECONDS
        )
        payload = {
            "sid": session.sid,
            "kid": key_id,
            "name": name,
            "role": role.value,
            "exp": session.expires,
        }
        return session, self._seal("session", payload)

    def session(self, cookie: str | None) -> ConsoleSession | None:
        """The session of a cookie this server signed and that has not expired, or None."""
        payload = None if not cookie else self._open("session", cookie)
        if payload is None:
            return None
        try:
            return ConsoleSession(
                str(payload["sid"]),
                int(str(payload["kid"])),
                str(payload["name"]),
                Role(str(payload["role"])),
                int(str(payload["exp"])),
            )
        except (KeyError, ValueError):
            return None

    def new_presession(self) -> str:
        return self._seal(
            "presession",
            {"sid": secrets.token_urlsafe(16), "exp": int(time.time()) + PRESESSION_SECONDS},
        )

    def presession_id(self, cookie: str | None) -> str | None:
        payload = None if not cookie else self._open("presession", cookie)
        return None if payload is None else str(payload.get("sid", "")) or None

    def csrf_token(self, sid: str) -> str:
        return _b64(self._mac("csrf", sid.encode()))

    def csrf_ok(self, sid: str | None, token: str | None) -> bool:
        if not sid or not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(sid).encode())
