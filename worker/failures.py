"""What the commands stand on, failing, in words: the database, its schema, Redis or the broker,
the configuration.

`explain` turns an exception into what failed and the fix, with a kind the CLI maps to its exit
code (`worker.cli.main`, for every command), so a stopped Postgres is two lines instead of a
traceback. The words never carry a secret: URLs lose their passwords and the configured secrets
are redacted (`worker.logs.Redactor`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc
from pydantic import ValidationError

from worker.config import Settings, get_settings
from worker.logs import Redactor, configured_secrets

# SQLSTATEs of a schema older than the code: no table, no column (a migration not applied).
_SCHEMA_STATES = frozenset({"42P01", "42703"})
_UP = "`promobulk up` in another terminal"


class Kind(StrEnum):
    DATABASE = "database"
    SCHEMA = "schema"
    BROKER = "broker"
    CONFIGURATION = "configuration"


@dataclass(frozen=True, slots=True)
class Failure:
    kind: Kind
    what: str
    fix: str


class ConfigurationError(Exception):
    """promobulk cannot run with this configuration; `fix` says what to change."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix


def require_credentials(settings: Settings) -> None:
    """Workers (and `up` without its simulator) need the app's Criteo credentials."""
    if settings.criteo_client_id and settings.criteo_client_secret.get_secret_value():
        return
    raise ConfigurationError(
        "CRITEO_CLIENT_ID and CRITEO_CLIENT_SECRET are not set",
        "put them in the environment or in a .env file here (cp .env.example .env); to rehearse"
        " without them: promobulk up --simulator",
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _settings() -> Settings | None:
    try:
        return get_settings()
    except ValidationError:
        return None


def _redactor(settings: Settings | None) -> Redactor:
    return Redactor(configured_secrets(settings) if settings else ())


def _first_line(redactor: Redactor, exc: BaseException) -> str:
    """The driver's own reason (psycopg's, not SQLAlchemy's wrapper), first line, redacted."""
    reason = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(reason).splitlines() if line.strip()]
    return redactor.text(lines[0] if lines else type(reason).__name__)[:300]


def _schema(exc: sqlalchemy.exc.DBAPIError, settings: Settings | None) -> Failure | None:
    """A table or column the code needs is missing: migrations not applied."""
    if getattr(exc.orig, "sqlstate", None) not in _SCHEMA_STATES:
        return None
    redactor = _redactor(settings)
    where = f" at {redactor.text(settings.database_url)}" if settings else ""
    return Failure(
        Kind.SCHEMA,
        f"the database{where} is not migrated: {_first_line(redactor, exc)}",
        "run `promobulk db upgrade`",
    )


def _database(exc: sqlalchemy.exc.DBAPIError, settings: Settings | None) -> Failure:
    redactor = _redactor(settings)
    where = f" {redactor.text(settings.database_url)}" if settings else ""
    # psycopg says "connection failed: connection to server at ... failed: FATAL:  <why>".
    reason = _first_line(redactor, exc).rsplit("failed: ", 1)[-1].removeprefix("FATAL:").strip()
    if "does not exist" in reason:
        fix = "create that database, or point DATABASE_URL at one that exists"
    elif "password" in reason or "authentication" in reason:
        fix = "check the user and password in DATABASE_URL"
    else:
        fix = f"start Postgres, or run {_UP}, or set DATABASE_URL"
    return Failure(Kind.DATABASE, f"cannot use the database{where}: {reason}", fix)


def _broker(exc: BaseException, settings: Settings | None) -> Failure:
    redactor = _redactor(settings)
    url = settings.celery_broker_url if settings else ""
    where = f" {redactor.text(url)}" if url else ""
    return Failure(
        Kind.BROKER,
        f"cannot reach Redis{where}: {_first_line(redactor, exc)}",
        f"start Redis, or run {_UP}, or set REDIS_URL (a job already stored is sent once it"
        " is back)",
    )


def _settings_failure(exc: ValidationError) -> Failure:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
    )
    return Failure(
        Kind.CONFIGURATION,
        f"a setting is not valid: {problems}",
        "correct it in the environment or .env (README: Configuration)",
    )


_DATABASE_DOWN = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
_BROKER_DOWN = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
)


def explain(exc: BaseException) -> Failure | None:
    """What failed and the fix, or None for an error that is not about the infrastructure."""
    for cause in _chain(exc):
        if isinstance(cause, ConfigurationError):
            return Failure(Kind.CONFIGURATION, cause.what, cause.fix)
        if isinstance(cause, ValidationError) and cause.title.endswith(Settings.__name__):
            return _settings_failure(cause)
        if isinstance(cause, sqlalchemy.exc.ProgrammingError):
            return _schema(cause, _settings())
        if isinstance(cause, _DATABASE_DOWN):
            return _database(cause, _settings())
        if isinstance(cause, _BROKER_DOWN):
            return _broker(cause, _settings())
    return None


def redacted(exc: BaseException) -> str:
    """An unexpected error's own words, with no secret in them."""
    return _redactor(_settings()).text(f"{type(exc).__name__}: {exc}")[:500]
