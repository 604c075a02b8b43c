"""A real stack for end-to-end tests: the simulator, `promobulk` CLI, worker and beat processes."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.request import urlopen

import pytest
import redis
import sqlalchemy as sa

from tests.conftest import free_port, until
from tests.jobs import forget_facts
from worker.domain.transitions import CHUNK_ACTIVE, JOB_TERMINAL
from worker.localstack import kill_process, stack_env, start_beat, start_worker, stop_process
from worker.simulator.control import SimulatorControl
from worker.simulator.server import RunningSimulator, start_in_thread

E2E_RATE_LIMIT = 6000


@dataclass
class Stack:
    env: dict[str, str]
    sim: RunningSimulator
    control: SimulatorControl
    tmp: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run the installed `promobulk` entry point as a user would."""
        result = subprocess.run(
            [str(Path(sys.executable).parent / "promobulk"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"promobulk {args} -> {result.returncode}\n{result.stderr}")
        return result

    def submit(self, csv_path: Path, *args: str) -> int:
        result = self.cli("submit", str(csv_path), "--json", *args, check=True)
        return int(json.loads(result.stdout)["id"])

    def status(self, job_id: int) -> dict[str, Any]:
        return dict(json.loads(self.cli("status", str(job_id), "--json", check=True).stdout))

    def wait_for_job(self, job_id: int, timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status(job_id)
            if status["status"] not in ("queued", "running"):
                return status
            time.sleep(1)
        raise AssertionError(f"job {job_id} did not finish in {timeout}s: {status}")

    def wait_for_progress(self, job_id: int, done: int, timeout: float = 120) -> dict[str, Any]:
        """Until at least `done` SKUs of the job have an outcome."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(job_id)
            if status["done"] >= done or status["status"] not in ("queued", "running"):
                return status
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} made no progress to {done} in {timeout}s")

    def set_rate(self, per_minute: int, *, configured: int | None = None) -> None:
        """The simulator's limit, and the one the workers started from now on are told."""
        self.control.configure(rate_limit_per_minute=per_minute)
        self.env["CRITEO_RATE_LIMIT_PER_MINUTE"] = str(configured or per_minute)

    def start_api(self) -> str:
        """A real `promobulk api` process (the HTTP API and the console) on a free port; its
        URL once `/healthz` answers. Stopped with the stack."""
        port = free_port()
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "promobulk"), "api", "--port", str(port)],
            env=self.env,
            start_new_session=True,
        )
        self.processes.append(process)
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                with urlopen(f"{url}/healthz", timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        until(healthy, 30, "the API to answer")
        return url

    def start_worker(
        self, concurrency: int = 2, extra_args: tuple[str, ...] = ()
    ) -> subprocess.Popen[bytes]:
        process = start_worker(self.env, concurrency=concurrency, extra_args=extra_args)
        self.processes.append(process)
        return process

    def start_beat(self) -> subprocess.Popen[bytes]:
        process = start_beat(self.env, self.tmp / f"beat-{len(self.processes)}")
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            stop_process(process)
        for process in self.processes:
            kill_process(process)
        self.sim.stop()


def end_unfinished(engine: sa.Engine) -> None:
    """End the jobs an earlier test left unfinished (submitted without a worker, stopped
    mid-way): every job's chunks share the sample's missing line item, so one of them would hold
    this test's chunks behind it, and this test's workers would sweep it into their metrics."""
    active = ", ".join(f"'{s.value}'" for s in CHUNK_ACTIVE)
    ended = ", ".join(f"'{s.value}'" for s in JOB_TERMINAL)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE items SET status = 'cancelled' WHERE status = 'pending'"))
        conn.execute(
            sa.text(
                "UPDATE chunks SET status = 'cancelled', lease_expires_at = NULL"
                f" WHERE status IN ({active})"
            )
        )
        conn.execute(sa.text(f"UPDATE jobs SET status = 'cancelled' WHERE status NOT IN ({ended})"))


@contextlib.contextmanager
def make_stack(
    database_url: str,
    redis_url: str,
    tmp: Path,
    *,
    rate_limit: int = E2E_RATE_LIMIT,
    env: Mapping[str, str] = MappingProxyType({}),
) -> Iterator[Stack]:
    redis.Redis.from_url(redis_url).flushdb()
    engine = sa.create_engine(database_url)
    forget_facts(engine)
    end_unfinished(engine)
    engine.dispose()
    sim = start_in_thread()
    control = SimulatorControl(sim.url)
    control.configure(rate_limit_per_minute=rate_limit)
    environment = stack_env(
        database_url=database_url, redis_url=redis_url, api_url=sim.url, rate_limit=rate_limit
    )
    environment.pop("CELERY_BROKER_URL", None)
    environment.update(env)
    stack = Stack(environment, sim, control, tmp)
    try:
        yield stack
    finally:
        stack.close()


# Short leases and a fast sweep, so recovery from a killed process takes seconds in tests.
FAST_RECOVERY = {
    "PROMOBULK_CHUNK_LEASE_SECONDS": "8",
    "PROMOBULK_SWEEP_INTERVAL_SECONDS": "1",
    "PROMOBULK_CHUNK_PARK_BASE_SECONDS": "1",
    "PROMOBULK_CHUNK_PARK_MAX_SECONDS": "4",
}


@pytest.fixture
def stack(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    with make_stack(database_url, redis_url, tmp_path, env=FAST_RECOVERY) as s:
        yield s


def item_rows(engine: sa.Engine, job_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT line_item_id, sku_id, status, error_kind, error_code, bid_before,"
                    " bid_after, product_status_before, product_status_after, attempts"
                    " FROM items WHERE job_id = :j"
                ),
                {"j": job_id},
            ).all()
        )


# --- `promobulk up` as a user runs it -------------------------------------------------------

PROMOBULK = str(Path(sys.executable).parent / "promobulk")


@dataclass
class User:
    """A user's machine: a home of their own (the state folder is found from it), an empty
    folder to work in, and no promobulk setting in the environment."""

    folder: Path
    env: dict[str, str]
    ups: list[subprocess.Popen[str]] = field(default_factory=list)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PROMOBULK, *args],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def json(self, *args: str) -> Any:
        """The command's (last) JSON line."""
        result = self.cli(*args, "--json")
        assert result.returncode in (0, 3), result.stderr
        return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture
def user() -> Iterator[User]:
    # Not under pytest's tree: as root, pgserver runs Postgres as its own user, who must be able
    # to reach the state folder (see tests/conftest.postgres_dir).
    folder = Path(tempfile.mkdtemp(prefix="promobulk-up-"))
    folder.chmod(0o755)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PROMOBULK_", "CRITEO_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env["XDG_DATA_HOME"] = str(folder / "data")
    person = User(folder, env)
    yield person
    for process in person.ups:  # a failed test stops what it started, in order
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(90)
        if process.stdout is not None:
            process.stdout.close()
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Up:
    process: subprocess.Popen[str]
    ready: dict[str, Any]
    seconds: float

    def interrupt(self) -> float:
        """SIGINT, as Ctrl-C sends; the seconds until everything stopped."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(90) == 0
        return time.monotonic() - began


def start_up(user: User, port: int, *, rate: int | None = None) -> Up:
    """`promobulk up --simulator --json` on `port`, once it said it is ready."""
    env = dict(user.env)
    if rate is not None:
        env["CRITEO_RATE_LIMIT_PER_MINUTE"] = str(rate)
    began = time.monotonic()
    with (user.folder / "up.err").open("a") as err:
        process = subprocess.Popen(
            [PROMOBULK, "up", "--simulator", "--json", "--port", str(port)],
            env=env,
            cwd=user.folder,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    user.ups.append(process)
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        if not selector.select(timeout=120):
            raise AssertionError((user.folder / "up.err").read_text())
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline() or "{}")
    assert "api_url" in ready, (ready, (user.folder / "up.err").read_text())
    return Up(process, ready, time.monotonic() - began)
