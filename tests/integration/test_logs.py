"""Logs: JSON lines, and no secret in them, whichever way it could get there.

Real code paths produce the errors (a token request with a wrong secret, a 401 on a product
call, a webhook answered 500, a database URL with a password that cannot connect); they are
logged the ways code and libraries log: in the message, in %-arguments, in `extra` fields and
headers, in structlog keywords and in exception text. None of the secrets may come out.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from urllib.parse import quote, quote_plus, urlencode

import pytest
import redis
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url

from tests.integration.api.conftest import runner_settings
from tests.integration.test_notify import _finished_job
from tests.jobs import WEBHOOK_SECRET
from tests.webhook import receiving
from worker.config import Settings
from worker.criteo.errors import AuthenticationFailed, CriteoError
from worker.criteo.runtime import ClientRuntime
from worker.logs import REDACTED, configure_logging
from worker.notify import SIGNATURE_HEADER, Delivery, deliver
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import Scenario
from worker.simulator.server import RunningSimulator

log = logging.getLogger("promobulk.test")
WRONG_SECRET = "wrong+secret/with=chars!"
DB_PASSWORD = "pg-p4ss/w0rd"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What the process logs, configured as a service configures it; restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def _spellings(*secrets: str) -> set[str]:
    """Every way a secret could be logged: plain, URL-encoded with `/` left as it is (the
    default of `quote`), with nothing left, form-encoded, and with lower-case hex digits."""
    forms = set()
    for s in secrets:
        for form in (s, quote(s), quote(s, safe=""), quote_plus(s)):
            forms |= {form, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), form)}
    return forms


async def _product_call(settings: Settings, line_item: int) -> CriteoError:
    runtime = await ClientRuntime.open(settings)
    try:
        await runtime.client.get_products(line_item)
    except CriteoError as error:
        return error
    finally:
        await runtime.aclose()
    raise AssertionError("the call should have failed")


def test_no_secret_reaches_the_log(
    captured: io.StringIO,
    simulator: RunningSimulator,
    sim_control: SimulatorControl,
    sim_scenario: Scenario,
    redis_url: str,
    clean_redis: redis.Redis,
    engine: sa.Engine,
    database_url: str,
) -> None:
    good = runner_settings(simulator, redis_url)
    db_url = make_url(database_url).set(port=1, password=DB_PASSWORD)
    db_url_text = db_url.render_as_string(hide_password=False)
    settings = good.model_copy(
        update={
            "criteo_client_secret": type(good.criteo_client_secret)(WRONG_SECRET),
            "database_url": db_url_text,
            "log_level": "debug",
        }
    )
    configure_logging(settings, stream=captured)
    line_item = sim_scenario.accounts[0].line_items[0].id

    # 1. A token request with a wrong secret; a library that logs the form it posted.
    refused = asyncio.run(_product_call(settings, line_item))
    assert isinstance(refused, AuthenticationFailed)
    log.exception("chunk failed: %s", refused, exc_info=refused)
    form = urlencode({"grant_type": "client_credentials", "client_secret": WRONG_SECRET})
    logging.getLogger("aiohttp.client").debug("POST /oauth2/token data=%s", form)
    log.warning("token refused", extra={"client_secret": WRONG_SECRET, "body": form})

    # 2. A 401 on a product call: the token that was refused, in headers and keywords.
    runtime_token = _issue_token(good, line_item, clean_redis)
    sim_control.configure(faults={"get": {"p_token_expired": 1.0}})
    expired = asyncio.run(_product_call(good, line_item))
    assert expired.status == 401
    log.error(
        "401 from %s with Authorization: Bearer %s",
        "get",
        runtime_token,
        extra={"headers": {"Authorization": f"Bearer {runtime_token}", "Accept": "json"}},
    )
    structlog.get_logger("promobulk.test").warning(
        "retrying", access_token=runtime_token, detail=f"token={runtime_token}"
    )
    try:
        raise RuntimeError(f'{{"access_token": "{runtime_token}", "expires_in": 900}}')
    except RuntimeError:
        log.exception("unexpected token answer")

    sim_control.configure(faults={"get": {"p_token_expired": 0.0}})

    # 3. A webhook answered 500: the request's signature and the secret.
    with receiving(500) as receiver:
        job_id = _finished_job(engine, good, sim_scenario, receiver.url)
        outcome = asyncio.run(deliver(engine, good, job_id, 0))
        assert outcome is Delivery.RETRY
        sent_headers = receiver.received[0][0]
    signature = sent_headers[SIGNATURE_HEADER]
    log.warning("webhook answered 500", extra={"request_headers": sent_headers})
    log.warning("webhook signed with secret=%s", WEBHOOK_SECRET)
    # A secret put in a URL by `quote` (`/` left as it is), and in lower-case hex.
    for spelling in (quote(WRONG_SECRET), quote(WEBHOOK_SECRET, safe="").lower()):
        log.warning("callback to https://hooks.example/%s failed", spelling)

    # 4. A database URL with a password that cannot connect.
    unreachable = sa.create_engine(db_url)
    with pytest.raises(sa.exc.OperationalError) as failed:
        unreachable.connect()
    unreachable.dispose()
    log.error("database %s unreachable", db_url_text, exc_info=failed.value)
    try:
        raise ConnectionError(f"cannot connect with DATABASE_URL={db_url_text}")
    except ConnectionError:
        log.exception("startup failed")

    output = captured.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) >= 10
    secrets = _spellings(WRONG_SECRET, runtime_token, WEBHOOK_SECRET, DB_PASSWORD)
    leaked = {s for s in secrets if s in output}
    assert not leaked, f"secrets in the log: {leaked}"
    hook = next(line for line in lines if line["event"] == "webhook answered 500")
    assert hook["request_headers"][SIGNATURE_HEADER] == REDACTED != signature
    assert output.count(REDACTED) >= 10
    # What is not secret stays: the API's code, the host, the logger names.
    assert "invalid-client-credentials" in output
    assert "127.0.0.1" in output
    assert {"promobulk.test", "aiohttp.client"} <= {line.get("logger") for line in lines}


def _issue_token(settings: Settings, line_item: int, cache: redis.Redis) -> str:
    """A real token, through a successful call; read from the shared cache where it lives."""

    async def call() -> None:
        runtime = await ClientRuntime.open(settings)
        try:
            await runtime.client.get_products(line_item)
        finally:
            await runtime.aclose()

    asyncio.run(call())
    token = cache.get(f"promobulk:criteo:token:{settings.criteo_client_id}")
    assert isinstance(token, bytes)
    return token.decode()
