"""Logging for every long-running process: one line of JSON per record, secrets redacted.

`configure_logging` routes structlog and the standard library through one handler, so Celery's,
aiohttp's and our own `logging.getLogger(...)` records all come out the same way and all pass
through `redact`, the one place where secrets are removed. The runner binds `job_id`,
`chunk_id` and `line_item_id` with `structlog.contextvars`; every record made while a chunk runs
carries them, whichever logger made it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import IO, Any
from urllib.parse import urlsplit

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from worker.config import Settings

REDACTED = "[REDACTED]"

# Keys whose values are secrets whatever they hold (extra fields, headers, structlog kwargs).
_SECRET_KEY = re.compile(
    r"(secret|token|password|passwd|authorization|api[_-]?key|cookie|signature)", re.I
)
# Secrets inside text: bearer tokens, `name=value` / `"name": "value"` pairs, URL passwords,
# our own API keys.
_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    (
        re.compile(
            r"(?i)\b(client_secret|access_token|refresh_token|password|api_key|apikey|"
            r"webhook_secret|secret)(\"?'?\s*[=:]\s*\"?'?)[^\s&\"',;}]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"(?i)(authorization\"?'?\s*[=:]\s*\"?'?)[^\"',;}\n]+"), rf"\1{REDACTED}"),
    # A bare "token" names too much ordinary text: only values that look like one.
    (re.compile(r"(?i)\b(token\"?'?\s*[=:]\s*\"?'?)[A-Za-z0-9._~+/-]{16,}"), rf"\1{REDACTED}"),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
    (re.compile(r"\bpbk_[A-Za-z0-9_-]{8,}"), f"pbk_{REDACTED}"),
)


def _any_encoding(secret: str) -> str:
    """A pattern matching the secret in every spelling a URL or a form could give it: each
    character as itself or percent-encoded (upper or lower hex digits, its UTF-8 bytes), a
    space also as `+`. So `quote(s)` (which leaves `/`), `quote(s, safe="")`, `quote_plus(s)`
    and any mix of them are all found."""
    parts = []
    for char in secret:
        encoded = "".join(
            "%" + "".join(f"[{d.upper()}{d.lower()}]" if d.isalpha() else d for d in f"{b:02X}")
            for b in char.encode("utf-8")
        )
        spellings = [re.escape(char), encoded] + (["\\+"] if char == " " else [])
        parts.append("(?:" + "|".join(spellings) + ")")
    return "".join(parts)


class Redactor:
    """Removes secrets from a record: by key, by pattern, and the configured secret values
    themselves in any spelling they could be logged in (plain, or percent-encoded in any way
    a URL or a form encodes it)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            if len(secret) < 4:  # too short to replace without mangling ordinary text
                continue
            if secret not in self.secrets:
                self.secrets.append(secret)
        longest_first = sorted(self.secrets, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(_any_encoding(s) for s in longest_first)) if longest_first else None
        )

    def text(self, value: str) -> str:
        if self._pattern is not None:
            value = self._pattern.sub(REDACTED, value)
        for pattern, replacement in _TEXT_PATTERNS:
            value = pattern.sub(replacement, value)
        return value

    def value(self, key: str, value: Any) -> Any:
        if _SECRET_KEY.search(key) and isinstance(value, str | bytes) and value:
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {str(k): self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(key, v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self.text(str(value))

    def __call__(self, _: WrappedLogger, __: str, event: EventDict) -> EventDict:
        return {key: self.value(key, value) for key, value in event.items()}


def configured_secrets(settings: Settings) -> list[str]:
    """The secret values of the settings, and the passwords in its URLs."""
    secrets = [
        settings.criteo_client_secret.get_secret_value(),
        settings.webhook_secret.get_secret_value(),
        settings.console_secret.get_secret_value(),
    ]
    for url in (settings.database_url, settings.redis_url, settings.broker_url or ""):
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            secrets.append(password)
    return secrets


redactor = Redactor()


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(
    settings: Settings,
    *,
    level: str | int | None = None,
    stream: IO[str] | None = None,
) -> None:
    """Once at process start. `level` (e.g. Celery's --loglevel) applies when
    PROMOBULK_LOG_LEVEL is not set; records go to `stream` (stderr by default)."""
    redactor.add(configured_secrets(settings))
    chosen = settings.log_level or level or "INFO"
    numeric = chosen if isinstance(chosen, int) else logging.getLevelName(str(chosen).upper())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if settings.log_format == "console"
        else structlog.processors.JSONRenderer()
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # Celery and aiohttp attach their own handlers to some loggers; let them all reach root.
    for name in ("celery", "celery.task", "celery.redirected", "aiohttp.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
