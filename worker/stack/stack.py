"""`Stack`: the steps that start a stack, in order, and stop it in reverse (see `worker.stack`)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from typing import IO, Any

from worker import stackfile
from worker.config import Settings, get_settings
from worker.embedded import free_port
from worker.failures import ConfigurationError
from worker.localstack import simulator_env, start_api, start_simulator, start_worker
from worker.stack.children import Children, terminate_group
from worker.stack.spec import Interrupted, Report, SimulatorSpec, StackFailed, StackSpec, Started

SIMULATOR_STATE = "simulator.json"


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
        self._children = Children(self.logs)
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
                    terminate_group(pid)
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
        self._children.add("valkey", lambda: spawn_valkey(data, port)[1], process)
        self._stops.append(("redis", lambda: self._children.stop("valkey", "stopped, queue kept")))
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

        self._children.add("simulator", spawn, spawn())
        self._stops.append(("simulator", lambda: self._stop_simulator(url, spec)))
        self.env.update(simulator_env(url, spec.rate_limit))

        def ready() -> str:
            from worker.simulator.control import SimulatorControl

            self._children.wait_http("simulator", f"{url}/_sim/config")
            SimulatorControl(url).configure(rate_limit_per_minute=spec.rate_limit)
            served = "its saved state" if scenario == saved else scenario.name
            return f"{url}, {served}, {spec.rate_limit} calls a minute"

        return url, ready

    def _stop_simulator(self, url: str, spec: SimulatorSpec) -> str:
        what = "stopped"
        if spec.keep_state and not self._children.exited("simulator"):
            from worker.simulator.control import SimulatorControl

            state = SimulatorControl(url).state()
            partial = self.state / f"{SIMULATOR_STATE}.partial"
            partial.write_text(json.dumps(state))
            partial.replace(self.state / SIMULATOR_STATE)
            what = f"stopped, state saved to {SIMULATOR_STATE}"
        return self._children.stop("simulator", what)

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

        self._children.add("worker", spawn, spawn())
        self._stops.append(("workers", self._stop_workers))

        def ready() -> str:
            celery = make_celery(self.settings())
            deadline = time.monotonic() + 90
            try:
                while name not in (workers_answering(celery, 1.0) or []):
                    if self.interrupted():
                        raise Interrupted
                    gone = self._children.exited("worker")
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

        self._children.add("api", spawn, spawn())
        self._stops.append(("api", lambda: self._children.stop("api", "stopped")))

        def ready() -> str:
            self._children.wait_http("api", f"{url}/healthz")
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
                children=self._children.pids(),
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
        self._children.restart_dead(self.report)

    # --- stopping -----------------------------------------------------------------------------

    def _stop_workers(self, hurry: Callable[[], bool] | None = None) -> str:
        return self._children.stop_workers(self.spec.grace_seconds, hurry)

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
        self._children.kill_all()
