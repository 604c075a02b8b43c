"""How much a process costs, read from /proc (Linux): memory high-water marks, CPU time, and a
command measured from start to end."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found.append(int(entry.name))
    return found


def hwm_mb(pid: int) -> float | None:
    """Peak resident set size (VmHWM) of a live process, in MB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def cpu_seconds(pid: int, *, with_reaped_children: bool = False) -> float:
    """User + system CPU time of a live process (and of its children it has reaped)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        if with_reaped_children:
            ticks += int(fields[13]) + int(fields[14])
        return ticks / _TICK
    return 0.0


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process, its reaped children and its live children (one level)."""
    return cpu_seconds(pid, with_reaped_children=True) + sum(
        cpu_seconds(c) for c in children_of(pid)
    )


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass(frozen=True)
class Measured:
    code: int
    stdout: str
    stderr: str
    wall_seconds: float
    peak_rss_mb: float
    cpu_seconds: float


def run_measured(args: list[str], env: dict[str, str], timeout: float) -> Measured:
    """Run a command to its end: exit code, output, wall time, peak RSS and CPU time."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(args, env=env, stdout=out, stderr=err)  # noqa: S603
        deadline = started + timeout
        # ru_maxrss would include the memory of this (large) process, which the child shares
        # until it execs: the child's own high-water mark is read from /proc while it runs.
        peak = 0.0
        while True:
            peak = max(peak, hwm_mb(process.pid) or 0.0)
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.01)
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            process.returncode,
            out.read().decode(),
            err.read().decode(),
            wall,
            peak,
            usage.ru_utime + usage.ru_stime,
        )
