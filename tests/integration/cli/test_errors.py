"""Errors for people (issue 14, point 3): a database or Redis out of reach, a schema not
migrated, missing credentials or a bad setting is one line of what failed and one of the fix,
with an exit code of its own, for every command; the traceback only when asked for."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import free_port
from tests.jobs import make_jobs

PROMOBULK = str(Path(sys.executable).parent / "promobulk")
SECRET = "s3cret-pw-never-shown"
# One place (`worker.cli.main`) handles every command; these stand for the rest.
COMMANDS = [["status", "1"], ["items", "1"], ["api-key", "list"], ["db", "upgrade"]]


def _environment(tmp: Path, env: dict[str, str]) -> dict[str, str]:
    """No server setting, no running stack to find, and wide lines (one line per message)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PROMOBULK_", "CRITEO_"))}
    base.pop("DATABASE_URL", None)
    base.pop("REDIS_URL", None)
    return {**base, "PROMOBULK_STATE_DIR": str(tmp / "state"), "COLUMNS": "200", **env}


def run_all(
    tmp: Path, commands: list[list[str]], **env: str
) -> list[subprocess.CompletedProcess[str]]:
    """The installed command, once per argument list, side by side, in an empty folder."""
    started = [
        (
            args,
            subprocess.Popen(
                [PROMOBULK, *args],
                env=_environment(tmp, env),
                cwd=tmp,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args in commands
    ]
    done = []
    for args, process in started:
        out, err = process.communicate(timeout=90)
        done.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return done


def run(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_all(tmp, [list(args)], **env)[0]


def said(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_a_database_out_of_reach_is_two_lines_and_exit_8_for_every_command(
    tmp_path: Path,
) -> None:
    url = f"postgresql://promobulk:{SECRET}@127.0.0.1:{free_port()}/promobulk"
    for command, result in zip(
        COMMANDS, run_all(tmp_path, COMMANDS, DATABASE_URL=url), strict=True
    ):
        assert result.returncode == 8, (command, result.stderr)
        lines = said(result)
        assert len(lines) == 2, (command, lines)
        assert lines[0].startswith("error: cannot use the database postgresql://promobulk:")
        assert lines[0].endswith("Connection refused")
        assert lines[1].startswith("  fix: start Postgres, or run `promobulk up`")
        assert SECRET not in result.stderr + result.stdout


def test_json_says_it_on_stdout_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    url = f"postgresql://promobulk:{SECRET}@127.0.0.1:{free_port()}/promobulk"
    quiet, debug = run_all(
        tmp_path, [["status", "1", "--json"], ["--debug", "status", "1"]], DATABASE_URL=url
    )
    assert quiet.returncode == 8
    assert json.loads(quiet.stdout)["error"] == "database"
    assert "Traceback" not in quiet.stderr
    logged = run(tmp_path, "status", "1", DATABASE_URL=url, PROMOBULK_LOG_LEVEL="debug")
    for asked in (debug, logged):
        assert asked.returncode == 8
        assert "Traceback (most recent call last)" in asked.stderr
        assert "sqlalchemy.exc.OperationalError" in asked.stderr
        assert said(asked)[-1].startswith("  fix: ")


def test_a_schema_not_migrated_says_db_upgrade_with_exit_9(
    tmp_path: Path, fresh_database: str
) -> None:
    commands = [["list"], ["status", "1"], ["api-key", "list"]]
    for result in run_all(tmp_path, commands, DATABASE_URL=fresh_database):
        assert result.returncode == 9, result.stderr
        assert "is not migrated" in said(result)[0]
        assert said(result)[1] == "  fix: run `promobulk db upgrade`"
    assert run(tmp_path, "db", "upgrade", DATABASE_URL=fresh_database).returncode == 0
    assert run(tmp_path, "list", DATABASE_URL=fresh_database).returncode == 0


def test_redis_out_of_reach_is_exit_10_and_the_stored_job_is_named(
    tmp_path: Path, database_url: str, engine: sa.Engine
) -> None:
    line_item = 8_888_000_000_000_000_001
    csv_path = tmp_path / "job.csv"
    csv_path.write_text(f"line_item_id,sku_id,action,bid_override\n{line_item},a,pause,\n")
    result = run(
        tmp_path,
        "submit",
        str(csv_path),
        DATABASE_URL=database_url,
        REDIS_URL=f"redis://:{SECRET}@127.0.0.1:{free_port()}/0",
    )
    assert result.returncode == 10, result.stderr
    lines = said(result)
    assert len(lines) == 2
    assert lines[0].startswith("error: cannot reach Redis redis://:")
    assert "Connection refused" in lines[0]
    assert "a job already stored is sent once it is back" in lines[1]
    assert SECRET not in result.stderr + result.stdout
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT DISTINCT job_id FROM items WHERE line_item_id = :li"), {"li": line_item}
        ).scalars()
        for job_id in list(stored):  # no later test waits behind it
            make_jobs(engine).cancel(job_id)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"CRITEO_CLIENT_ID": "app", "CRITEO_CLIENT_SECRET": ""}, "CRITEO_CLIENT_ID and"),
        ({"PROMOBULK_MAX_BID": "lots"}, "PROMOBULK_MAX_BID"),
    ],
)
def test_a_configuration_that_cannot_work_is_exit_11(
    tmp_path: Path, database_url: str, env: dict[str, str], words: str
) -> None:
    result = run(tmp_path, "worker", DATABASE_URL=database_url, **env)
    assert result.returncode == 11, result.stderr
    assert words in said(result)[0]
    assert said(result)[1].startswith("  fix: ")
    assert "Traceback" not in result.stderr


def test_up_refuses_what_cannot_work_before_starting_anything(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # No credentials and no --simulator.
    result = run(tmp_path, "up")
    assert result.returncode == 11, result.stderr
    assert "CRITEO_CLIENT_ID and CRITEO_CLIENT_SECRET are not set" in said(result)[0]
    assert "promobulk up --simulator" in said(result)[1]
    assert not state.exists()
    # The API's port taken.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(tmp_path, "up", "--simulator", "--port", str(port))
    assert result.returncode == 11, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    # Another stack on the same state folder.
    state.mkdir()
    with (state / "up.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run(tmp_path, "up", "--simulator", "--port", str(free_port()))
    assert result.returncode == 11, result.stderr
    assert "another promobulk stack runs on" in result.stderr
    assert not (state / "pg").exists()
