"""Real servers for every test: the machine's when DATABASE_URL / REDIS_URL are set, else embedded.

Each test session gets its own fresh database (migrated with Alembic) and its own Redis
logical database, so a run never sees another run's data.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from worker.embedded import start_postgres, start_valkey

pytest_plugins = ["tests.fixtures_simulator"]


def pytest_report_header() -> str | None:
    """Say once, at the top, when the console's browser tests cannot run here."""
    from tests.e2e.console_stack import why_no_browser

    reason = why_no_browser()
    return None if reason is None else f"console browser tests skipped: {reason}"


def postgres_dir() -> Path:
    """A data directory for an embedded Postgres, outside pytest's temporary tree.

    As root, pgserver runs Postgres as its own user; pytest makes its tree root-only again
    whenever another session starts, which would cut a running server off from its data.
    """
    path = Path(tempfile.mkdtemp(prefix="promobulk-pg-"))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def _server_urls() -> Iterator[tuple[str, str]]:
    db_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    stoppers = []
    if not db_url:
        state = postgres_dir()
        db_url, pg = start_postgres(state / "data", "postgres")
        stoppers += [pg.cleanup, lambda: shutil.rmtree(state, ignore_errors=True)]
    if not redis_url:
        redis_url, valkey = start_valkey()
        stoppers.append(valkey.stop)
    yield db_url, redis_url
    for stop in stoppers:
        stop()


def _psycopg_url(url: str) -> sa.URL:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg")


@pytest.fixture(scope="session")
def database_url(_server_urls: tuple[str, str]) -> Iterator[str]:
    """A fresh, migrated database for this test session."""
    server_url = _psycopg_url(_server_urls[0])
    name = f"pb_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = server_url.set(database=name).render_as_string(hide_password=False)
    from worker.db.migrate import upgrade

    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url(_server_urls: tuple[str, str]) -> str:
    """A Redis logical database of its own: 14 on a shared server, 0 on an embedded one."""
    url = _server_urls[1]
    if os.environ.get("REDIS_URL"):
        url = url.rsplit("/", 1)[0] + "/14" if url.count("/") >= 3 else url + "/14"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def clean_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    from worker.db.engine import make_engine

    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[str]:
    """An empty database on the session's server, dropped afterwards."""
    server = make_url(database_url)
    name = f"pb_empty_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until(check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")
