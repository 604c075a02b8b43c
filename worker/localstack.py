"""Processes of a promobulk stack on one machine, for the demo, the tests and the benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from worker.simulator.scenario import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET


def stack_env(
    *, database_url: str, redis_url: str, api_url: str, rate_limit: int, **extra: str
) -> dict[str, str]:
    """The environment a worker needs to run against a simulator."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CRITEO_API_URL=api_url,
        CRITEO_CLIENT_ID=DEFAULT_CLIENT_ID,
        CRITEO_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
        CRITEO_RATE_LIMIT_PER_MINUTE=str(rate_limit),
    )
    env.update(extra)
    return env


def start_worker(
    env: Mapping[str, str],
    *,
    concurrency: int = 2,
    extra_args: tuple[str, ...] = (),
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """A real `promobulk worker` process (prefork), in its own process group."""
    out = log.open("ab") if log else None
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker",
                "worker",
                f"--concurrency={concurrency}",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                *extra_args,
            ],
            env=dict(env),
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
        )
    finally:
        if out is not None:
            out.close()  # the worker has its own copy of the descriptor


def start_beat(env: Mapping[str, str], schedule: Path) -> subprocess.Popen[bytes]:
    """A real `promobulk beat` process: an extra trigger of the sweep (the workers sweep anyway)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker",
            "beat",
            "--loglevel=WARNING",
            f"--schedule={schedule}",
        ],
        env=dict(env),
        start_new_session=True,
    )


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
