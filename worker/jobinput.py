"""A job request as JSON fields: the HTTP API's body (or query) and the Celery message alike.

Field checks live here so both interfaces refuse the same things with the same words; the rows
themselves are checked by the submission, which numbers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from worker.config import Settings
from worker.domain.enums import Priority
from worker.domain.guardrails import OPTION_KEYS, BadOption, guardrails_from_options
from worker.domain.validation import RowError
from worker.submission import Dispatch, JobRequest, SubmissionRejected, Submitted, submit_rows

JOB_OPTION_KEYS = ("skip_read", *OPTION_KEYS)
REQUEST_FIELDS = ("idempotency_key", "priority", "dry_run", "callback_url", "not_before", "options")
KEY_MAX_LEN = 200
URL_MAX_LEN = 2000


class InvalidField(ValueError):
    """A request field that cannot be used; nothing was stored."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _flag(fields: Mapping[str, Any], name: str) -> bool:
    value = fields.get(name, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise InvalidField(name, "must be true or false")
    return value


def _idempotency_key(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= KEY_MAX_LEN or "\x00" in value:
        raise InvalidField("idempotency_key", f"must be a string of 1 to {KEY_MAX_LEN} characters")
    return value


def _priority(value: Any) -> Priority:
    try:
        return Priority(value if value is not None else Priority.NORMAL)
    except ValueError:
        raise InvalidField("priority", "must be one of high, normal") from None


def _callback_url(value: Any, callbacks_enabled: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > URL_MAX_LEN or "\x00" in value:
        raise InvalidField("callback_url", f"must be an http(s) URL of at most {URL_MAX_LEN}")
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        valid = False
    if not valid:
        raise InvalidField("callback_url", "must be an absolute http or https URL")
    if not callbacks_enabled:
        raise InvalidField(
            "callback_url", "callbacks are off: the server has no PROMOBULK_WEBHOOK_SECRET"
        )
    return value


def _not_before(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise InvalidField("not_before", "must be an ISO 8601 date-time with a time zone")
    return when


def _options(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidField("options", "must be an object")
    unknown = sorted(set(value) - set(JOB_OPTION_KEYS))
    if unknown:
        raise InvalidField(
            f"options.{unknown[0]}", f"is not an option; known: {', '.join(JOB_OPTION_KEYS)}"
        )
    if not isinstance(value.get("skip_read", False), bool):
        raise InvalidField("options.skip_read", "must be true or false")
    try:
        guardrails_from_options(value, Decimal(3))
    except BadOption as bad:
        raise InvalidField(f"options.{bad.field}", bad.reason) from None
    return dict(value)


def job_request(
    fields: Mapping[str, Any], *, submitted_by: str, callbacks_enabled: bool
) -> JobRequest:
    """The job's settings from request fields; raises InvalidField for the first bad one."""
    unknown = sorted(set(fields) - set(REQUEST_FIELDS))
    if unknown:
        raise InvalidField(unknown[0], "is not a field of a job request")
    return JobRequest(
        submitted_by=submitted_by,
        idempotency_key=_idempotency_key(fields.get("idempotency_key")),
        priority=_priority(fields.get("priority")),
        dry_run=_flag(fields, "dry_run"),
        options=_options(fields.get("options")),
        not_before=_not_before(fields.get("not_before")),
        callback_url=_callback_url(fields.get("callback_url"), callbacks_enabled),
    )


def item_rows(items: Any) -> list[Mapping[str, object]]:
    """The `items` array as rows for the submission; entries that are not objects are refused
    with their row numbers (row 1 is the first item), as bad CSV rows are."""
    if not isinstance(items, list):
        raise InvalidField("items", "must be an array of objects")
    bad = [
        RowError(n, "item", "must be an object")
        for n, item in enumerate(items, start=1)
        if not isinstance(item, dict)
    ]
    if bad:
        raise SubmissionRejected(bad[:100], len(bad))
    return items


def submit_json(
    engine: Engine,
    settings: Settings,
    fields: Mapping[str, Any],
    *,
    submitted_by: str,
    dispatch: Dispatch | None,
) -> Submitted:
    """Store a job from a JSON request (`items` and the request fields) and dispatch it."""
    request = job_request(
        {k: v for k, v in fields.items() if k != "items"},
        submitted_by=submitted_by,
        callbacks_enabled=bool(settings.webhook_secret.get_secret_value()),
    )
    return submit_rows(
        engine,
        item_rows(fields.get("items")),
        request,
        max_bid=settings.max_bid,
        dispatch=dispatch,
    )
