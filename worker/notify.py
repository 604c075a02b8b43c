"""Completion notifications: POST a finished job's document to its `callback_url`, signed.

The receiver checks `X-Promobulk-Signature: sha256=<hex HMAC-SHA256 of the raw body>` keyed by
the shared `PROMOBULK_WEBHOOK_SECRET`. Each attempt is counted in the job's row before it is
sent, fenced by its number, so a duplicated or re-sent message never POSTs twice; a failed
attempt is retried with capped exponential backoff by the Celery task.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker.config import Settings
from worker.criteo.transport import AiohttpTransport, TransportError, open_session
from worker.db.notifications import NotificationRepository
from worker.domain.backoff import backoff
from worker.jobs.service import Jobs

SIGNATURE_HEADER = "X-Promobulk-Signature"


class Delivery(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GAVE_UP = "gave_up"
    NOT_DUE = "not_due"


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str) -> bool:
    """For receivers (and our tests): constant-time check of a signature header."""
    return hmac.compare_digest(sign(body, secret), header)


async def post_json(url: str, body: bytes, headers: dict[str, str], seconds: float) -> PostResult:
    """One POST, no redirects followed; any answer or failure becomes a PostResult."""
    async with open_session() as session:
        try:
            response = await AiohttpTransport(session).send(
                "POST",
                url,
                headers={"Content-Type": "application/json", **headers},
                body=body,
                request_timeout=seconds,
            )
        except TransportError as exc:
            return PostResult(None, f"{type(exc).__name__}: {exc}"[:500])
    error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
    return PostResult(response.status, error)


def retry_delay(settings: Settings, attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: doubling from the base, capped."""
    return backoff(
        attempt, base=settings.webhook_retry_base_seconds, cap=settings.webhook_retry_max_seconds
    )


async def deliver(engine: Engine, settings: Settings, job_id: int, attempt: int) -> Delivery:
    """Make delivery attempt `attempt` (0-based) of a finished job's notification."""
    with Session(engine) as session:
        url = NotificationRepository(session).claim(job_id, attempt)
        session.commit()
    if url is None:
        return Delivery.NOT_DUE
    # The delivery record changes with every attempt; each attempt sends the same body.
    document = Jobs(engine, settings).get(job_id).model_dump(mode="json", exclude={"notification"})
    secret = settings.webhook_secret.get_secret_value()
    if not secret:
        result = PostResult(None, "PROMOBULK_WEBHOOK_SECRET is not set: nothing was sent")
        outcome = Delivery.GAVE_UP
    else:
        body = json.dumps({"event": "job.finished", "job": document}).encode()
        result = await post_json(
            url, body, {SIGNATURE_HEADER: sign(body, secret)}, settings.webhook_timeout_seconds
        )
        if result.ok:
            outcome = Delivery.DELIVERED
        elif attempt + 1 < settings.webhook_max_attempts:
            outcome = Delivery.RETRY
        else:
            outcome = Delivery.GAVE_UP
    with Session(engine) as session:
        NotificationRepository(session).record(
            job_id, status=result.status, error=result.error, delivered=result.ok
        )
        session.commit()
    return outcome
