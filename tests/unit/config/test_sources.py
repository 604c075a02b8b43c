"""Where a setting comes from: the environment, then `.env` here, then the stack a running
`promobulk up` publishes (only while its process lives), then the default."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from worker import stackfile
from worker.config import GivenSettings, Settings

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/promobulk"
STACK_DB = "postgresql+psycopg://postgres@/promobulk?host=/state/pg"
STACK_REDIS = "redis://127.0.0.1:40001/0"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder to work in, and a state folder of its own; no server settings set."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    for name in ("DATABASE_URL", "REDIS_URL", "CRITEO_API_URL", "CRITEO_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "state"
    folder.mkdir()
    monkeypatch.setenv("PROMOBULK_STATE_DIR", str(folder))
    return folder


def publish(folder: Path, pid: int, since: int | None) -> Path:
    settings = {"DATABASE_URL": STACK_DB, "REDIS_URL": STACK_REDIS, "CRITEO_CLIENT_ID": "sim"}
    return stackfile.write(
        folder,
        stackfile.RunningStack(pid, STACK_DB, STACK_REDIS, settings=settings, started=since),
    )


def test_a_running_stack_is_found_and_env_and_dotenv_come_first(state: Path) -> None:
    assert Settings().database_url == DEFAULT_DB
    path = publish(state, os.getpid(), stackfile.started(os.getpid()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    found = Settings()
    assert (found.database_url, found.redis_url) == (STACK_DB, STACK_REDIS)
    assert found.criteo_client_id == "sim"

    Path(".env").write_text("REDIS_URL=redis://from-dotenv:6379/0\nCRITEO_CLIENT_ID=\n")
    dotenv = Settings()
    assert dotenv.redis_url == "redis://from-dotenv:6379/0"
    assert dotenv.database_url == STACK_DB
    assert dotenv.criteo_client_id == "sim"  # empty counts as unset, in .env too

    os.environ["REDIS_URL"] = "redis://from-env:6379/0"
    try:
        assert Settings().redis_url == "redis://from-env:6379/0"
    finally:
        del os.environ["REDIS_URL"]


def test_only_a_live_stack_counts_and_up_never_takes_another_stacks_servers(state: Path) -> None:
    publish(state, os.getpid(), since=1)  # this pid, but a process started at another time
    assert Settings().database_url == DEFAULT_DB
    publish(state, 2**22 + 12345, since=None)  # no such process
    assert Settings().database_url == DEFAULT_DB
    publish(state, os.getpid(), stackfile.started(os.getpid()))
    assert Settings().database_url == STACK_DB
    assert GivenSettings().database_url == DEFAULT_DB
    assert "database_url" not in GivenSettings().model_fields_set
    stackfile.remove(state)
    assert Settings().database_url == DEFAULT_DB


def test_the_default_state_folder_is_the_users_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PROMOBULK_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert stackfile.state_dir() == tmp_path / "data" / "promobulk"
    monkeypatch.delenv("XDG_DATA_HOME")
    expected = (
        Path("/var/lib/promobulk")
        if os.geteuid() == 0
        else Path.home() / ".local" / "share" / "promobulk"
    )
    assert stackfile.state_dir() == expected
