"""Processes of a promobulk stack on one machine, for `promobulk up`, the demo, the tests and the
benchmarks: each a real `promobulk` process in a session of its own (a Ctrl-C meant for the
process that started them reaches them only through it, in order)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from worker.simulator.scenario import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET


def simulator_env(api_url: str, rate_limit: int) -> dict[str, str]:
    """The settings that point a worker at a simulator, as its demo client."""
    return {
        "CRITEO_API_URL": api_url,
        "CRITEO_CLIENT_ID": DEFAULT_CLIENT_ID,
        "CRITEO_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "CRITEO_RATE_LIMIT_PER_MINUTE": str(rate_limit),
    }


def stack_env(
    *, database_url: str, redis_url: str, api_url: str, rate_limit: int, **extra: str
) -> dict[str, str]:
    """The environment a worker needs to run against a simulator."""
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url)
    env.update(simulator_env(api_url, rate_limit))
    env.update(extra)
    return env


def _spawn(
    args: list[str], env: Mapping[str, str], log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`python -m worker ARGS` in its own session, its output appended to `log` if given."""
    out = log.open("ab") if log else None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "worker", *args],
            env=dict(env),
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
        )
    finally:
        if out is not None:
            out.close()  # the child has its own copy of the descriptor


def start_worker(
    env: Mapping[str, str],
    *,
    concurrency: int = 2,
    extra_args: tuple[str, ...] = (),
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """A real `promobulk worker` process (prefork); it sweeps in turn with any others."""
    return _spawn(
        [
            "worker",
            f"--concurrency={concurrency}",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            *extra_args,
        ],
        env,
        log,
    )


def start_beat(env: Mapping[str, str], schedule: Path) -> subprocess.Popen[bytes]:
    """A real `promobulk beat` process: an extra trigger of the sweep (the workers sweep anyway)."""
    return _spawn(["beat", "--loglevel=WARNING", f"--schedule={schedule}"], env)


def start_api(
    env: Mapping[str, str], host: str, port: int, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """A real `promobulk api` process."""
    return _spawn(["api", "--host", host, "--port", str(port)], env, log)


def start_simulator(
    env: Mapping[str, str], port: int, scenario: Path, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """A real `promobulk simulator` process serving `scenario` on 127.0.0.1."""
    return _spawn(["simulator", "--port", str(port), "--scenario", str(scenario)], env, log)


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> bool:
    """Until `url` answers 200 (True), the process exits or the time is up (False)."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own http
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    return False


def kill_process(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and all its children, as the OOM killer or a lost host would."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM (a warm shutdown for Celery), then SIGKILL for the whole group if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
