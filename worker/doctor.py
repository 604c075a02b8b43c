"""`promobulk doctor`: is this machine ready to run jobs, and if not, what to change.

Each check gives a verdict and, when it is not `ok`, the fix. Besides the configuration, the
servers and the API, it checks the machinery: workers answer a Celery ping, the sweep (which
the workers run in turn) ran lately, and how many messages wait. The token check makes a real token
request (the cache would hide a revoked secret). For a line item, reading is a GET of its
products, and managing is proven by a write that cannot change anything: a delete of a SKU made
up for the occasion, which no catalog holds. The API checks the app's scope before it looks at
the body, so a read-only app gets 403 `insufficient-scope` and an app that may manage gets an
answer about the SKU (a success, or a 400 naming it).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode, urlparse

import redis
import sqlalchemy as sa
from pydantic import ValidationError

from worker.config import Settings
from worker.criteo.errors import CriteoError, Forbidden, LineItemNotFound, ValidationRejected
from worker.criteo.runtime import ClientRuntime
from worker.criteo.transport import AiohttpTransport, TransportError, open_session

PROBE_SKU_PREFIX = "promobulk-doctor-probe-"


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_settings() -> tuple[list[Check], Settings | None]:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        fix = "correct these environment variables (see the README's Configuration table)"
        return [Check("configuration", Verdict.FAIL, problems, fix)], None
    checks = [Check("configuration", Verdict.OK, "every setting parses")]
    if not settings.criteo_client_id or not settings.criteo_client_secret.get_secret_value():
        checks.append(
            Check(
                "credentials",
                Verdict.FAIL,
                "CRITEO_CLIENT_ID or CRITEO_CLIENT_SECRET is empty",
                "set both to the app's client id and secret from the Criteo developer portal",
            )
        )
    url = urlparse(settings.criteo_api_url)
    if url.scheme != "https" and url.hostname not in ("127.0.0.1", "localhost"):
        checks.append(
            Check(
                "api url",
                Verdict.WARN,
                f"CRITEO_API_URL {settings.criteo_api_url} is not https",
                "use https://api.criteo.com unless this is a simulator",
            )
        )
    return checks, settings


def check_database(settings: Settings) -> list[Check]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from worker.db.migrate import alembic_config

    engine = sa.create_engine(settings.sqlalchemy_url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
            current = set(MigrationContext.configure(conn).get_current_heads())
    except sa.exc.SQLAlchemyError as exc:
        reason = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc).strip()
        fix = "check DATABASE_URL, and that Postgres is running and reachable"
        return [Check("database", Verdict.FAIL, reason.splitlines()[0][:300], fix)]
    finally:
        engine.dispose()
    heads = set(ScriptDirectory.from_config(alembic_config(settings.sqlalchemy_url)).get_heads())
    checks = [Check("database", Verdict.OK, f"Postgres {version} answers")]
    if current == heads:
        checks.append(Check("migrations", Verdict.OK, f"at head ({', '.join(sorted(heads))})"))
    else:
        at = ", ".join(sorted(current)) or "no schema"
        checks.append(
            Check(
                "migrations",
                Verdict.FAIL,
                f"database at {at}, code expects {', '.join(sorted(heads))}",
                "run `promobulk db upgrade`",
            )
        )
    return checks


def check_redis(settings: Settings) -> list[Check]:
    checks = []
    urls = {"redis": settings.redis_url}
    if settings.celery_broker_url != settings.redis_url:
        urls["broker"] = settings.celery_broker_url
    for name, url in urls.items():
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        try:
            client.ping()
            checks.append(Check(name, Verdict.OK, "answers PING"))
        except redis.RedisError as exc:
            variable = "REDIS_URL" if name == "redis" else "CELERY_BROKER_URL"
            fix = f"check {variable}, and that the server is running and reachable"
            checks.append(Check(name, Verdict.FAIL, str(exc)[:300], fix))
        finally:
            client.close()
    return checks


async def _token(settings: Settings) -> Check:
    form = urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": settings.criteo_client_id,
            "client_secret": settings.criteo_client_secret.get_secret_value(),
        }
    ).encode()
    url = f"{settings.criteo_api_url.rstrip('/')}/oauth2/token"
    async with open_session() as session:
        try:
            response = await AiohttpTransport(session).send(
                "POST",
                url,
                headers={
                    "Accept": "application/json",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
                body=form,
                request_timeout=settings.criteo_request_timeout,
            )
        except TransportError as exc:
            fix = "check CRITEO_API_URL and the network path (proxy, firewall) to it"
            return Check("token", Verdict.FAIL, f"no answer from {url}: {exc}", fix)
    if response.status == 200 and b"access_token" in response.body:
        return Check("token", Verdict.OK, "the API issued a token for CRITEO_CLIENT_ID")
    if response.status in (400, 401, 403):
        fix = "check CRITEO_CLIENT_ID and CRITEO_CLIENT_SECRET in the Criteo developer portal"
        return Check("token", Verdict.FAIL, f"refused: HTTP {response.status}", fix)
    return Check(
        "token",
        Verdict.FAIL,
        f"unexpected answer: HTTP {response.status}",
        "try again later; if it persists, check CRITEO_API_URL",
    )


def _codes(error: CriteoError) -> set[str]:
    return {p.code for p in error.problems}


async def _line_item(settings: Settings, line_item_id: int) -> list[Check]:
    runtime = await ClientRuntime.open(settings)
    client = runtime.client
    try:
        try:
            products = await client.get_products(line_item_id)
        except LineItemNotFound:
            fix = "check the id; a line item of an account the app cannot see is not found either"
            return [Check("read", Verdict.FAIL, f"line item {line_item_id} not found", fix)]
        except Forbidden:
            fix = "the account must grant this app consent (Criteo partner portal, app consent)"
            return [Check("read", Verdict.FAIL, "no consent for the line item's account", fix)]
        except CriteoError as exc:
            return [Check("read", Verdict.FAIL, str(exc)[:300], "try again; see the message")]
        read = Check("read", Verdict.OK, f"line item {line_item_id}: {len(products)} products")
        probe = f"{PROBE_SKU_PREFIX}{uuid.uuid4().hex[:12]}"
        try:
            await client.delete_products(line_item_id, [probe])
        except ValidationRejected:
            pass
        except Forbidden as exc:
            if "insufficient-scope" in _codes(exc):
                fix = (
                    "the app is set up read-only: ask for the manage authorization of Retail"
                    " Media promoted products in the developer portal, then re-consent"
                )
                return [read, Check("manage", Verdict.FAIL, "the app may only read", fix)]
            fix = "the account must grant this app consent to manage (Criteo partner portal)"
            return [read, Check("manage", Verdict.FAIL, f"forbidden: {exc}"[:300], fix)]
        except CriteoError as exc:
            return [read, Check("manage", Verdict.FAIL, str(exc)[:300], "try again")]
        return [read, Check("manage", Verdict.OK, "the app may change this line item")]
    finally:
        await runtime.aclose()


def _workers(found: list[str] | None) -> Check:
    if found is None:
        return Check("workers", Verdict.SKIPPED, "the broker does not answer")
    if not found:
        fix = "start one: promobulk worker (or run promobulk up)"
        return Check("workers", Verdict.FAIL, "no worker answers a ping: jobs wait", fix)
    return Check("workers", Verdict.OK, f"{len(found)} answer: {', '.join(found)}"[:300])


def _sweep(settings: Settings, last: datetime | None, by: str | None) -> Check:
    """The workers sweep in turn (see `worker.sweep`): a sweep older than a few intervals
    means no worker is running, or their sweeps fail (their logs say why)."""
    fix = "start a worker; if workers run, their log says why the sweep fails"
    if last is None:
        return Check("sweep", Verdict.WARN, "has never run on this Redis", fix)
    age = (datetime.now(UTC) - last).total_seconds()
    detail = f"ran {age:.0f}s ago" + (f" (by {by})" if by else "")
    stale = age > max(60.0, 4 * settings.sweep_interval_seconds)
    return Check("sweep", Verdict.WARN if stale else Verdict.OK, detail, fix if stale else None)


def _queue(depth: int | None, workers: list[str] | None) -> Check:
    if depth is None:
        return Check("queue", Verdict.SKIPPED, "the broker does not answer")
    detail = f"{depth} message(s) waiting"
    if depth and workers == []:
        return Check("queue", Verdict.WARN, f"{detail}, taken by no worker", "start a worker")
    return Check("queue", Verdict.OK, detail)


def check_workers(settings: Settings) -> list[Check]:
    """Do workers answer (a Celery ping), did the sweep run lately, how many messages wait."""
    from worker.health import check

    found = check(settings)
    return [
        _workers(found.workers),
        _sweep(settings, found.sweep_last_run, found.sweep_by),
        _queue(found.queue_depth, found.workers),
    ]


def run_checks(line_item_id: int | None = None) -> list[Check]:
    checks, settings = check_settings()
    if settings is None:
        return checks
    checks += check_database(settings)
    checks += check_redis(settings)
    checks += check_workers(settings)
    credentials = all(c.verdict is not Verdict.FAIL for c in checks if c.name == "credentials")
    if not credentials:
        checks.append(Check("token", Verdict.SKIPPED, "no credentials"))
    else:
        checks.append(asyncio.run(_token(settings)))
    if line_item_id is not None:
        ready = all(c.verdict is Verdict.OK for c in checks if c.name in ("redis", "token"))
        if ready:
            checks += asyncio.run(_line_item(settings, line_item_id))
        else:
            reason = "needs Redis (rate limit, token cache) and a token"
            checks += [Check(n, Verdict.SKIPPED, reason) for n in ("read", "manage")]
    return checks
