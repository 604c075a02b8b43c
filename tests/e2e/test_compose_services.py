"""Each service of docker-compose.yml, run here as a real process: its `command` and its health
check exactly as written in the file (parsed with PyYAML), against this machine's test servers.

Only what a container has and this machine does not is translated: the fixed ports become free
ones, the /tmp paths go into the test's directory, the database of `migrate` is a new empty one,
and `HOSTNAME` is set as Docker sets it. Each health check must fail before its service starts
and pass once it has.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
import sqlalchemy as sa
import yaml
from alembic.script import ScriptDirectory

from tests.conftest import free_port
from tests.e2e.conftest import Stack
from worker.db.migrate import alembic_config
from worker.localstack import stop_process

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
SERVICES: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
BIN = Path(sys.executable).parent


class Translation:
    """The container's ports and paths, as they are on this machine."""

    def __init__(self, tmp: Path) -> None:
        self.ports = {p: str(free_port()) for p in ("8000", "5555", "8080", "9808")}
        self.paths = {"/tmp/promobulk-": str(tmp / "promobulk-")}

    def text(self, value: str) -> str:
        if value in self.ports:
            return self.ports[value]
        for port, local in self.ports.items():
            value = value.replace(f"127.0.0.1:{port}", f"127.0.0.1:{local}")
            value = value.replace(f"--port={port}", f"--port={local}")
        for path, local in self.paths.items():
            value = value.replace(path, local)
        return value

    def argv(self, command: list[str]) -> list[str]:
        """Programs from this virtualenv; `python` is this interpreter."""
        program = sys.executable if command[0] == "python" else str(BIN / command[0])
        return [program, *(self.text(a) for a in command[1:])]


def service_env(stack: Stack, name: str, tr: Translation) -> dict[str, str]:
    """The stack's environment (servers, simulator, credentials) plus the service's own literal
    settings; pass-through and interpolated entries are the stack's values here."""
    env = {**stack.env, "HOSTNAME": socket.gethostname()}
    for key, value in (SERVICES[name].get("environment") or {}).items():
        if value is not None and "${" not in str(value):
            env[key] = tr.text(str(value))
    return env


def health(name: str, env: dict[str, str], tr: Translation) -> subprocess.CompletedProcess[str]:
    """The service's health check, run the way Docker runs it."""
    test = SERVICES[name]["healthcheck"]["test"]
    if test[0] == "CMD-SHELL":
        argv = ["/bin/sh", "-c", tr.text(test[1].replace("$$", "$"))]
    else:
        assert test[0] == "CMD"
        argv = tr.argv(test[1:])
    env = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def until_healthy(
    name: str, process: subprocess.Popen[bytes], env: dict[str, str], tr: Translation
) -> None:
    deadline = time.monotonic() + 90
    result = None
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{name} exited with {process.returncode}"
        result = health(name, env, tr)
        if result.returncode == 0:
            return
        time.sleep(1)
    raise AssertionError(f"{name} never turned healthy: {result}")


@pytest.fixture
def translation(tmp_path: Path) -> Translation:
    return Translation(tmp_path)


def test_migrate_runs_once_and_leaves_the_schema_at_head(
    stack: Stack, translation: Translation, fresh_database: str
) -> None:
    env = {**service_env(stack, "migrate", translation), "DATABASE_URL": fresh_database}
    done = subprocess.run(
        translation.argv(SERVICES["migrate"]["command"]),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    engine = sa.create_engine(fresh_database)
    with engine.connect() as conn:
        at = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert at == ScriptDirectory.from_config(alembic_config(fresh_database)).get_current_head()


@pytest.mark.parametrize("name", ["api", "worker", "beat", "flower", "simulator"])
def test_a_long_running_service_turns_healthy(
    name: str, stack: Stack, translation: Translation
) -> None:
    env = service_env(stack, name, translation)
    assert health(name, env, translation).returncode != 0, "healthy before it started"
    process = subprocess.Popen(
        translation.argv(SERVICES[name]["command"]),
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        until_healthy(name, process, env, translation)
        if name == "worker":
            # The metrics of its prefork children, on the port the file gives it.
            port = translation.ports["9808"]
            with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                assert response.status == 200
    finally:
        stop_process(process)
    assert process.returncode is not None
