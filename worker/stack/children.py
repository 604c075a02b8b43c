"""The processes a stack runs, by name: started, started again when they die (up to a limit),
and stopped, the workers with a warm shutdown."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from worker import stackfile
from worker.localstack import kill_process, stop_process, wait_http
from worker.stack.spec import Report, StackFailed

MAX_RESTARTS = 3  # a child that dies more often than this in RESTART_WINDOW stops the stack
RESTART_WINDOW = 600.0


@dataclass
class _Child:
    """A process the stack runs and, when it dies, starts again."""

    name: str
    spawn: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes]
    restarts: list[float] = field(default_factory=list)


def terminate_group(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM a process group (a warm shutdown for a worker), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.killpg(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)


class Children:
    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self._running: dict[str, _Child] = {}

    def __bool__(self) -> bool:
        return bool(self._running)

    def add(
        self,
        name: str,
        spawn: Callable[[], subprocess.Popen[bytes]],
        process: subprocess.Popen[bytes],
    ) -> None:
        """`process`, already running; `spawn` starts it again when it dies."""
        self._running[name] = _Child(name, spawn, process)

    def exited(self, name: str) -> bool:
        return self._running[name].process.poll() is not None

    def pids(self) -> dict[str, tuple[int, int | None]]:
        """Each child's pid and start time, for other shells (`worker.stackfile`)."""
        return {
            c.name: (c.process.pid, stackfile.started(c.process.pid))
            for c in self._running.values()
        }

    def wait_http(self, name: str, url: str) -> None:
        if not wait_http(url, self._running[name].process):
            raise StackFailed(f"the {name} did not start: see {self._logs / (name + '.log')}")

    def restart_dead(self, report: Report) -> None:
        """A process that died is started again (and reported); raises StackFailed when one
        keeps dying."""
        now = time.monotonic()
        for child in self._running.values():
            code = child.process.poll()
            if code is None:
                continue
            child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW] + [now]
            if len(child.restarts) > MAX_RESTARTS:
                raise StackFailed(f"{child.name} keeps stopping (exit {code}): see {self._logs}")
            child.process = child.spawn()
            report(child.name, f"exited with code {code}: started again", 0.0)

    def stop(self, name: str, what: str) -> str:
        child = self._running.get(name)
        if child is not None:
            stop_process(child.process, timeout=10)
            del self._running[name]
        return what

    def stop_workers(self, grace_seconds: float, hurry: Callable[[], bool] | None) -> str:
        """A warm shutdown: each running chunk is released at its next call and sent again."""
        child = self._running.get("worker")
        if child is None or child.process.poll() is not None:
            self._running.pop("worker", None)
            return "stopped"
        process = child.process
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while process.poll() is None:
            if (hurry is not None and hurry()) or time.monotonic() > deadline:
                kill_process(process)
                del self._running["worker"]
                return "killed before they released their chunks (queued again at the next start)"
            time.sleep(0.05)
        del self._running["worker"]
        return "stopped (warm shutdown: a chunk under way is released, not lost)"

    def kill_all(self) -> None:
        """Anything a failed start left behind."""
        for child in self._running.values():
            kill_process(child.process)
        self._running.clear()
