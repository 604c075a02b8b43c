"""Where `promobulk up` keeps its state, and the small file by which other shells find the stack
it runs.

The state folder is PROMOBULK_STATE_DIR, else the user's data directory: `$XDG_DATA_HOME/
promobulk`, `~/Library/Application Support/promobulk` on macOS, `~/.local/share/promobulk`;
for root `/var/lib/promobulk`, because pgserver then runs Postgres as a user of its own, which
must be able to reach the folder (it would open root's home to everyone otherwise).

While `up` runs, `stack.json` in that folder (mode 0600) holds its pid, its URLs and the
settings other shells need to reach it; it is removed when `up` stops. `worker.config` falls
back to it for those settings when neither the environment nor `.env` sets them, and only while
the process that wrote it is alive. Nothing secret goes in: embedded servers have no passwords,
and the simulator's client is the published demo one.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

STACK_FILE = "stack.json"


def state_dir() -> Path:
    configured = os.environ.get("PROMOBULK_STATE_DIR")
    if configured:
        return Path(configured).expanduser()
    data = os.environ.get("XDG_DATA_HOME")
    if data:
        return Path(data).expanduser() / "promobulk"
    if os.name == "posix" and os.geteuid() == 0:
        return Path("/var/lib/promobulk")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "promobulk"
    return Path.home() / ".local" / "share" / "promobulk"


def started(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (Linux); None where unknown."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    return None


@dataclass(frozen=True)
class RunningStack:
    pid: int
    database_url: str
    redis_url: str
    api_url: str | None = None
    simulator_url: str | None = None
    # The settings other shells take from it (DATABASE_URL, REDIS_URL, the simulator's).
    settings: dict[str, str] = field(default_factory=dict)
    # What `up` started (name: pid and its start), so that a killed `up` leaves nothing behind.
    children: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    started: int | None = None  # the process's start (see `started`), against a reused pid

    def alive(self) -> bool:
        return alive(self.pid, self.started)


def alive(pid: int, since: int | None = None) -> bool:
    """The process exists and, where its start is known, is the one that started then (a pid
    reused after a crash or a reboot is another process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return since is None or started(pid) in (None, since)


def write(folder: Path, stack: RunningStack) -> Path:
    """Atomically, readable by its owner only."""
    path = folder / STACK_FILE
    partial = path.with_suffix(".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(asdict(stack), out, indent=2)
    partial.replace(path)
    return path


def read(folder: Path | None = None, *, live_only: bool = True) -> RunningStack | None:
    """The stack described in the folder's `stack.json`; None when there is none, it cannot be
    read, or (with `live_only`) the process that wrote it is gone."""
    try:
        data = json.loads(((folder or state_dir()) / STACK_FILE).read_text())
        stack = RunningStack(**data)
    except (OSError, ValueError, TypeError):
        return None
    return stack if not live_only or stack.alive() else None


def remove(folder: Path) -> None:
    (folder / STACK_FILE).unlink(missing_ok=True)
