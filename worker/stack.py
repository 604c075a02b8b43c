"""One promobulk stack on one machine, started and stopped in order: the one place that does it,
for `promobulk up` and `promobulk demo`.

Start: hold the state folder (one stack at a time; what a killed predecessor left running is
stopped first), Postgres and Valkey (embedded, their data in the state folder, unless given),
the schema, the simulator when asked, the workers (which also sweep), the HTTP API when asked,
and the file that lets other shells find it all (`worker.stackfile`); each step reported as it
ends. Stop, in reverse, so that nothing is lost: other shells stop finding the stack; the API
stops taking requests; the workers get a warm shutdown, in which a running chunk is released at
its next call and sent again; the simulator saves its state for the next start; then Valkey
(its queue kept on disk) and Postgres.

A stop that must not wait (a second Ctrl-C, or workers still busy after the grace period) kills
the workers instead: their chunks stay `running` until their leases expire, except on an
embedded database, which no other worker can use, where the next start queues them again at
once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from worker import stackfile
from worker.config import Settings, get_settings
from worker.embedded import free_port
from worker.failures import ConfigurationError
from worker.localstack import (
    kill_process,
    simulator_env,
    start_api,
    start_simulator,
    start_worker,
    stop_process,
    wait_http,
)

Report = Callable[[str, str, float], None]  # step, what happened, seconds it took
SIMULATOR_STATE = "simulator.json"
MAX_RESTARTS = 3  # a child that dies more often than this in RESTART_WINDOW stops the stack
RESTART_WINDOW = 600.0


@dataclass(frozen=True)
class SimulatorSpec:
    scenario: Path  # served at the first start (at every start unless `keep_state`)
    rate_limit: int  # the simulator's limit, and the workers' setting
    keep_state: bool = False  # saved when the stack stops, served again when it starts


@dataclass(frozen=True)
class StackSpec:
    state_dir: Path
    workers: int = 2  # prefork processes of the stack's Celery worker
    api: tuple[str, int] | None = None  # host and port of `promobulk api`
    simulator: SimulatorSpec | None = None
    database_url: str | None = None  # a server of one's own; None: embedded
    redis_url: str | None = None
    publish: bool = False  # write stack.json for other shells
    grace_seconds: float = 30.0  # how long stopping workers may take before they are killed


@dataclass(frozen=True)
class Started:
    state_dir: Path
    logs: Path
    database_url: str
    redis_url: str
    api_url: str | None
    simulator_url: str | None
    requeued: int  # chunks a killed predecessor left running, queued again


class Interrupted(Exception):
    """A stop was asked for while the stack was starting."""


class StackFailed(Exception):
    """A part of the stack would not start or stopped for good; the message says which."""


@dataclass
class _Child:
    """A process the stack runs and, when it dies, starts again."""

    name: str
    spawn: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes]
    restarts: list[float] = field(default_factory=list)


def _port_free(host: str, port: int) -> bool:
    """As the server will bind it: with SO_REUSEADDR, so a port a stopped server left in
    TIME_WAIT counts as free."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _terminate_group(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM a process group (a warm shutdown for a worker), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.killpg(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)


class Stack:
    def __init__(
        self,
        spec: StackSpec,
        report: Report,
        interrupted: Callable[[], bool] = lambda: False,
    ) -> None:
        self.spec = spec
        self.report = report
        self.interrupted = interrupted
        self.state = spec.state_dir.expanduser().resolve()
        self.logs = self.state / "logs"
        self.env: dict[str, str] = dict(os.environ)
        self.unfinished_jobs: int | None = None  # counted as the stack stops
        self._stops: list[tuple[str, Callable[[], str]]] = []
        self._children: dict[str, _Child] = {}
        self._lock: IO[str] | None = None
        self._postgres: Any = None

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- starting -----------------------------------------------------------------------------

    def _step(self, name: str, start: Callable[[], str], since: float | None = None) -> None:
        if self.interrupted():
            raise Interrupted
        began = time.monotonic() if since is None else since
        what = start()
        self.report(name, what, time.monotonic() - began)

    def start(self) -> Started:
        spec = self.spec
        if spec.api and not _port_free(*spec.api):
            host, port = spec.api
            raise ConfigurationError(
                f"port {port} on {host} is in use",
                f"stop what uses it, or choose another: promobulk up --port {port + 1}",
            )
        self._hold_state_folder()
        database_url, redis_url = spec.database_url, spec.redis_url
        if database_url is None:
            self._step("postgres", self._embedded_postgres)
        if redis_url is None:
            self._step("redis", self._embedded_valkey)
        requeued: list[int] = []
        self._step("schema", lambda: self._schema(requeued))
        # The processes start side by side (each takes seconds to import itself), and are
        # waited for in order.
        launched = time.monotonic()
        waits: list[tuple[str, Callable[[], str]]] = []
        simulator_url = None
        if spec.simulator is not None:
            simulator_url, ready = self._start_simulator(spec.simulator)
            waits.append(("simulator", ready))
        waits.append(("workers", self._start_workers()))
        api_url = None
        if spec.api is not None:
            api_url = f"http://{spec.api[0]}:{spec.api[1]}"
            waits.append(("api", self._start_api(api_url)))
        for name, ready in waits:
            self._step(name, ready, since=launched)
        if spec.publish:
            self._publish(api_url, simulator_url)
        return Started(
            self.state,
            self.logs,
            self.env["DATABASE_URL"],
            self.env["REDIS_URL"],
            api_url,
            simulator_url,
            requeued[0] if requeued else 0,
        )

    def _hold_state_folder(self) -> None:
        """One stack per state folder (an advisory lock the OS drops with its holder), and what
        a holder that was killed left running is stopped."""
        self.state.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        lock = (self.state / "up.lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            running = stackfile.read(self.state, live_only=False)
            holder = f" (pid {running.pid})" if running else ""
            raise ConfigurationError(
                f"another promobulk stack runs on {self.state}{holder}",
                "use that one (other shells find it), stop it, or give this one --state-dir",
            ) from None
        self._lock = lock
        self._stops.append(("state", self._release_state_folder))
        left = stackfile.read(self.state, live_only=False)
        if left is not None:
            for name, (pid, since) in left.children.items():
                if stackfile.alive(pid, since):
                    began = time.monotonic()
                    _terminate_group(pid)
                    what = f"left running by a killed stack (pid {pid}): stopped"
                    self.report(name, what, time.monotonic() - began)
            stackfile.remove(self.state)

    def _release_state_folder(self) -> str:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        return ""

    def _embedded_postgres(self) -> str:
        from worker.embedded import start_postgres

        url, server = start_postgres(self.state / "pg")
        self._postgres = server
        self.env["DATABASE_URL"] = url
        self._stops.append(("postgres", self._stop_postgres))
        return "embedded, data in pg/"

    def _stop_postgres(self) -> str:
        self._postgres.cleanup()
        return "stopped"

    def _embedded_valkey(self) -> str:
        from worker.embedded import spawn_valkey

        data = self.state / "valkey"
        url, process = spawn_valkey(data)
        self.env["REDIS_URL"] = url
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        self._children["valkey"] = _Child("valkey", lambda: spawn_valkey(data, port)[1], process)
        self._stops.append(("redis", lambda: self._stop_child("valkey", "stopped, queue kept")))
        return f"embedded Valkey at {url.removeprefix('redis://')}, data in valkey/"

    def settings(self) -> Settings:
        """This process's settings are the stack's from here on (the demo and `up` use them)."""
        for name in ("DATABASE_URL", "REDIS_URL", *simulator_env("", 0)):
            if name in self.env:
                os.environ[name] = self.env[name]
        get_settings.cache_clear()
        return get_settings()

    def _schema(self, requeued: list[int]) -> str:
        from worker.db.engine import get_engine
        from worker.db.migrate import upgrade
        from worker.sweep import reclaim_every_lease

        if self.spec.database_url:
            self.env["DATABASE_URL"] = self.spec.database_url
        if self.spec.redis_url:
            self.env["REDIS_URL"] = self.spec.redis_url
        settings = self.settings()
        upgrade(settings.sqlalchemy_url)
        if self.spec.database_url is not None:
            return "at head"
        requeued.append(reclaim_every_lease(get_engine(settings.sqlalchemy_url)))
        again = f"; {requeued[0]} chunk(s) a killed stack left running queued again"
        return "at head" + (again if requeued[0] else "")

    def _start_simulator(self, spec: SimulatorSpec) -> tuple[str, Callable[[], str]]:
        """Its URL (the workers' API from now on), and a wait until it answers."""
        saved = self.state / SIMULATOR_STATE
        scenario = saved if spec.keep_state and saved.exists() else spec.scenario
        port = free_port()
        url = f"http://127.0.0.1:{port}"

        def spawn() -> subprocess.Popen[bytes]:
            return start_simulator(self.env, port, scenario, self.logs / "simulator.log")

        self._launch("simulator", spawn)
        self._stops.append(("simulator", lambda: self._stop_simulator(url, spec)))
        self.env.update(simulator_env(url, spec.rate_limit))

        def ready() -> str:
            from worker.simulator.control import SimulatorControl

            self._wait_http("simulator", f"{url}/_sim/config")
            SimulatorControl(url).configure(rate_limit_per_minute=spec.rate_limit)
            served = "its saved state" if scenario == saved else scenario.name
            return f"{url}, {served}, {spec.rate_limit} calls a minute"

        return url, ready

    def _stop_simulator(self, url: str, spec: SimulatorSpec) -> str:
        what = "stopped"
        if spec.keep_state and self._children["simulator"].process.poll() is None:
            from worker.simulator.control import SimulatorControl

            state = SimulatorControl(url).state()
            partial = self.state / f"{SIMULATOR_STATE}.partial"
            partial.write_text(json.dumps(state))
            partial.replace(self.state / SIMULATOR_STATE)
            what = f"stopped, state saved to {SIMULATOR_STATE}"
        return self._stop_child("simulator", what)

    def _launch(self, name: str, spawn: Callable[[], subprocess.Popen[bytes]]) -> None:
        self._children[name] = _Child(name, spawn, spawn())

    def _wait_http(self, name: str, url: str) -> None:
        if not wait_http(url, self._children[name].process):
            raise StackFailed(f"the {name} did not start: see {self.logs / (name + '.log')}")

    def _start_workers(self) -> Callable[[], str]:
        """A wait until the stack's worker answers a ping."""
        from worker.health import workers_answering
        from worker.tasks import make_celery

        name = f"promobulk-up-{os.getpid()}@{socket.gethostname()}"

        def spawn() -> subprocess.Popen[bytes]:
            return start_worker(
                self.env,
                concurrency=self.spec.workers,
                extra_args=("-n", name),
                log=self.logs / "worker.log",
            )

        self._launch("worker", spawn)
        self._stops.append(("workers", self._stop_workers))

        def ready() -> str:
            celery = make_celery(self.settings())
            deadline = time.monotonic() + 90
            try:
                while name not in (workers_answering(celery, 1.0) or []):
                    if self.interrupted():
                        raise Interrupted
                    gone = self._children["worker"].process.poll() is not None
                    if gone or time.monotonic() > deadline:
                        raise StackFailed(f"the worker did not start: see {self.logs}/worker.log")
            finally:
                celery.close()
            return f"{self.spec.workers} processes, sweeping in turn"

        return ready

    def _start_api(self, url: str) -> Callable[[], str]:
        """A wait until the API answers /healthz."""
        host, port = self.spec.api or ("", 0)

        def spawn() -> subprocess.Popen[bytes]:
            return start_api(self.env, host, port, self.logs / "api.log")

        self._launch("api", spawn)
        self._stops.append(("api", lambda: self._stop_child("api", "stopped")))

        def ready() -> str:
            self._wait_http("api", f"{url}/healthz")
            return url

        return ready

    def _publish(self, api_url: str | None, simulator_url: str | None) -> None:
        names = ("DATABASE_URL", "REDIS_URL", *(simulator_env("", 0) if simulator_url else ()))
        stackfile.write(
            self.state,
            stackfile.RunningStack(
                pid=os.getpid(),
                started=stackfile.started(os.getpid()),
                database_url=self.env["DATABASE_URL"],
                redis_url=self.env["REDIS_URL"],
                api_url=api_url,
                simulator_url=simulator_url,
                settings={n: self.env[n] for n in names},
                children={
                    c.name: (c.process.pid, stackfile.started(c.process.pid))
                    for c in self._children.values()
                },
            ),
        )
        self._stops.append(("stack", self._unpublish))

    def _unpublish(self) -> str:
        stackfile.remove(self.state)
        return ""

    # --- running ------------------------------------------------------------------------------

    def check(self) -> None:
        """While it runs: a process that died is started again (and reported); raises
        StackFailed when one keeps dying or Postgres stopped."""
        if self._postgres is not None and not self._postgres.get_postmaster_info().is_running():
            raise StackFailed(f"Postgres stopped: see {self.state / 'pg' / 'log'}")
        now = time.monotonic()
        for child in self._children.values():
            code = child.process.poll()
            if code is None:
                continue
            child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW] + [now]
            if len(child.restarts) > MAX_RESTARTS:
                raise StackFailed(f"{child.name} keeps stopping (exit {code}): see {self.logs}")
            child.process = child.spawn()
            self.report(child.name, f"exited with code {code}: started again", 0.0)

    # --- stopping -----------------------------------------------------------------------------

    def _stop_child(self, name: str, what: str) -> str:
        child = self._children.get(name)
        if child is not None:
            stop_process(child.process, timeout=10)
            del self._children[name]
        return what

    def _stop_workers(self, hurry: Callable[[], bool] | None = None) -> str:
        """A warm shutdown: each running chunk is released at its next call and sent again."""
        child = self._children.get("worker")
        if child is None or child.process.poll() is not None:
            self._children.pop("worker", None)
            return "stopped"
        process = child.process
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.spec.grace_seconds
        while process.poll() is None:
            if (hurry is not None and hurry()) or time.monotonic() > deadline:
                kill_process(process)
                del self._children["worker"]
                return "killed before they released their chunks (queued again at the next start)"
            time.sleep(0.05)
        del self._children["worker"]
        return "stopped (warm shutdown: a chunk under way is released, not lost)"

    def _count_unfinished(self) -> None:
        from worker.jobs.service import Jobs

        with contextlib.suppress(Exception):  # a count for the farewell, not worth a failure
            jobs, _ = Jobs.open(get_settings()).status_counts()
            self.unfinished_jobs = jobs.get("queued", 0) + jobs.get("running", 0)

    @property
    def running(self) -> bool:
        """Something was started that a stop would stop."""
        return bool(self._stops or self._children)

    def stop(self, hurry: Callable[[], bool] | None = None) -> None:
        """Everything started, in reverse order; safe to call twice. A Ctrl-C that reaches it
        (where no handler takes signals, as in the demo) makes the rest of the stop hurry."""
        interrupted = False
        while self._stops:
            name, stopper = self._stops.pop()
            began = time.monotonic()
            try:
                if name == "workers":
                    what = self._stop_workers((lambda: True) if interrupted else hurry)
                else:
                    what = stopper()
            except KeyboardInterrupt:
                interrupted, what = True, "interrupted"
            except Exception as exc:  # one part failing to stop must not leave the rest running
                what = f"did not stop cleanly: {type(exc).__name__}: {exc}"
            if what:
                self.report(name, what, time.monotonic() - began)
            if name == "workers":  # nothing changes the jobs from here on
                self._count_unfinished()
        for child in self._children.values():  # anything a failed start left behind
            kill_process(child.process)
        self._children.clear()
