"""Servers and processes of one benchmark run, all on loopback, all stopped at the end.

Postgres and Valkey are the embedded ones (`worker.embedded`) unless DATABASE_URL / REDIS_URL
are set; with DATABASE_URL the run makes a database of its own on that server and drops it,
with REDIS_URL it uses that server's logical database 13.
The simulator runs as its own process (`worker.bench.simulator`); workers are real `promobulk
worker` processes and jobs are submitted by the real `promobulk submit` command, measured
(`worker.bench.procfs`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from worker.bench.procfs import Measured, children_of, run_measured
from worker.bench.simulator import SimulatorProcess, start_simulator
from worker.db.facts import FactRepository
from worker.localstack import kill_process, stack_env, start_worker, stop_process
from worker.simulator.scenario import DEFAULT_CLIENT_ID, Scenario

TERMINAL = ("succeeded", "completed_with_failures", "failed", "cancelled")
LIMITER_KEY = f"promobulk:criteo:ratelimit:{DEFAULT_CLIENT_ID}"
LEARNED_KEYS = "promobulk:criteo:learned:*"
UNLIMITED = 1_000_000_000

_DURATION = re.compile(
    r"LOG:  duration: (?P<ms>[0-9.]+) ms  (?P<kind>statement|parse|bind|execute)[^:]*: (?P<sql>.*)"
)
_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def parse_statement_log(text: str) -> list[tuple[float, str, str]]:
    """(milliseconds, step, statement) from a Postgres log with `log_min_duration_statement =
    0`; the parse, bind and execute steps of a prepared statement are separate entries."""
    entries: list[tuple[float, str, str]] = []
    current: list[str] | None = None
    ms, kind = 0.0, ""
    for line in text.splitlines():
        if _PREFIX.match(line):
            if current is not None:
                entries.append((ms, kind, " ".join(current)))
                current = None
            match = _DURATION.search(line)
            if match:
                ms, kind = float(match["ms"]), match["kind"]
                current = [match["sql"]]
        elif current is not None and line.startswith(("\t", " ")):
            current.append(line.strip())
    if current is not None:
        entries.append((ms, kind, " ".join(current)))
    return entries


def forget_learned(redis_url: str) -> None:
    """Forget what workers learned of the API's limits (`worker.criteo.learned`), so that a run
    against a differently configured simulator starts from nothing, as a first night would."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(LEARNED_KEYS))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# --- Postgres, Redis, workers ---


@dataclass
class Stack:
    """Everything a section needs: URLs, a database engine, the simulator, worker processes."""

    workdir: Path
    database_url: str
    redis_url: str
    sim: SimulatorProcess
    engine: sa.Engine
    postgres_pid: int | None = None
    redis_pid: int | None = None
    embedded: bool = True
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def forget_refusals(self) -> None:
        """No refusal facts (`worker.domain.facts`): a measured job pays for its refusals as a
        first night would, whatever a warm-up or an earlier run taught."""
        with Session(self.engine) as session:
            FactRepository(session).clear()
            session.commit()

    def env(self, rate_limit: int, **extra: str) -> dict[str, str]:
        env = stack_env(
            database_url=self.database_url,
            redis_url=self.redis_url,
            api_url=self.sim.url,
            rate_limit=rate_limit,
            **extra,
        )
        env.pop("CELERY_BROKER_URL", None)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def clear_limiter(self) -> None:
        """A fresh shared rate-limit budget for the next section (nothing else is touched)."""
        client = redis.Redis.from_url(self.redis_url)
        try:
            client.delete(LIMITER_KEY)
        finally:
            client.close()

    def start_worker(
        self, env: dict[str, str], concurrency: int, name: str
    ) -> subprocess.Popen[bytes]:
        process = start_worker(env, concurrency=concurrency, log=self.workdir / f"{name}.log")
        self.workers.append(process)
        return process

    def worker_children(self, worker: subprocess.Popen[bytes], expected: int) -> list[int]:
        deadline = time.monotonic() + 60
        while True:
            children = children_of(worker.pid)
            if len(children) >= expected or time.monotonic() > deadline:
                return children
            time.sleep(0.2)

    def stop_worker(self, worker: subprocess.Popen[bytes]) -> None:
        stop_process(worker, timeout=20)
        kill_process(worker)
        if worker in self.workers:
            self.workers.remove(worker)

    def submit(self, csv_path: Path, env: dict[str, str]) -> tuple[int, Measured]:
        """`promobulk submit FILE --json` as a process: the job id and how the process ran."""
        run = run_measured(
            [sys.executable, "-m", "worker", "submit", str(csv_path), "--json"], env, 1800
        )
        if run.code != 0:
            raise RuntimeError(
                f"promobulk submit failed ({run.code}): {run.stderr[-2000:]}{run.stdout[-500:]}"
            )
        return int(json.loads(run.stdout)["id"]), run

    def wait_job(self, job_id: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        query = sa.text("SELECT status, counts, total FROM jobs WHERE id = :id")
        while True:
            with self.engine.connect() as conn:
                row = conn.execute(query, {"id": job_id}).one()
            if row.status in TERMINAL:
                return {"status": row.status, "counts": dict(row.counts), "total": row.total}
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {row.status} after {timeout:.0f}s")
            time.sleep(0.25)

    def withdraw(self, job_id: int) -> None:
        """Take back a job no worker has touched: its rows deleted (and vacuumed, so later runs
        see no dead rows), its messages purged from the broker's queues."""
        from worker.tasks import QUEUES  # the Celery app: only when needed

        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM items WHERE job_id = :j"), {"j": job_id})
            conn.execute(sa.text("DELETE FROM jobs WHERE id = :j"), {"j": job_id})
        with self.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(sa.text("VACUUM ANALYZE items, chunks, jobs"))
        client = redis.Redis.from_url(self.redis_url)
        try:
            for queue in QUEUES.values():
                keys = list(client.scan_iter(f"{queue}*"))
                if keys:
                    client.delete(*keys)
        finally:
            client.close()

    def job_timing(self, job_id: int) -> dict[str, Any]:
        """From the database: job and chunk times (epoch seconds) and chunk latency percentiles."""
        query = sa.text(
            """
            SELECT extract(epoch FROM j.created_at) AS created,
                   extract(epoch FROM j.finished_at) AS finished,
                   extract(epoch FROM min(c.started_at)) AS first_start,
                   extract(epoch FROM max(c.finished_at)) AS last_finish,
                   count(c.id) AS chunks,
                   sum(c.api_calls) AS api_calls,
                   max(c.attempts) AS max_attempts,
                   percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY extract(epoch FROM c.finished_at - c.started_at)) AS p50,
                   percentile_cont(0.99) WITHIN GROUP (
                       ORDER BY extract(epoch FROM c.finished_at - c.started_at)) AS p99,
                   max(extract(epoch FROM c.finished_at - c.started_at)) AS pmax
            FROM jobs j JOIN chunks c ON c.job_id = j.id
            WHERE j.id = :id
            GROUP BY j.id
            """
        )
        with self.engine.connect() as conn:
            row = conn.execute(query, {"id": job_id}).one()
        return {
            "created": float(row.created),
            "finished": float(row.finished),
            "first_start": float(row.first_start),
            "last_finish": float(row.last_finish),
            "chunks": int(row.chunks),
            "api_calls": int(row.api_calls or 0),
            "max_attempts": int(row.max_attempts or 0),
            "chunk_p50_ms": round(float(row.p50) * 1000, 1),
            "chunk_p99_ms": round(float(row.p99) * 1000, 1),
            "chunk_max_ms": round(float(row.pmax) * 1000, 1),
        }

    def table_stats(self) -> dict[str, dict[str, int]]:
        """Rows inserted and updated (and how many updates were HOT) per table, so far."""
        query = sa.text(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
            " WHERE relname IN ('items', 'chunks', 'jobs')"
        )
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            return {
                r.relname: {"inserted": r.n_tup_ins, "updated": r.n_tup_upd, "hot": r.n_tup_hot_upd}
                for r in conn.execute(query)
            }

    @contextlib.contextmanager
    def statement_log(self) -> Iterator[list[tuple[float, str, str]]]:
        """Every statement's server-side duration while inside (embedded Postgres only: it sets
        `log_min_duration_statement = 0` on the cluster for that time). Yields a list that is
        filled with (milliseconds, step, statement text) on exit."""
        found: list[tuple[float, str, str]] = []
        log = self.workdir / "pg" / "log"
        if not self.embedded or not log.exists():
            yield found
            return
        admin = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("ALTER SYSTEM SET log_min_duration_statement = 0"))
            conn.execute(sa.text("SELECT pg_reload_conf()"))
        time.sleep(0.3)
        offset = log.stat().st_size
        try:
            yield found
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text("ALTER SYSTEM RESET log_min_duration_statement"))
                conn.execute(sa.text("SELECT pg_reload_conf()"))
            with log.open("rb") as f:
                f.seek(offset)
                found.extend(parse_statement_log(f.read().decode(errors="replace")))

    def close(self) -> None:
        for worker in list(self.workers):
            self.stop_worker(worker)
        self.sim.stop()
        self.engine.dispose()


@contextlib.contextmanager
def open_stack(scenario: Scenario, workdir: Path) -> Iterator[Stack]:
    """Start (or join) Postgres and Redis, make and migrate a fresh database, start the
    simulator; stop and remove all of it at the end."""
    from worker.db.migrate import upgrade
    from worker.embedded import start_postgres, start_valkey

    cleanups: list[Any] = []
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    postgres_pid = redis_pid = None
    try:
        if database_url:
            database_url = _own_database(database_url, cleanups)
        else:
            database_url, pg = start_postgres(workdir / "pg", "promobulk_bench")
            cleanups.append(pg.cleanup)
            with contextlib.suppress(Exception):
                postgres_pid = int(pg.get_pid())
        if redis_url:
            # A logical database of its own (the tests use 14), so no other worker takes its
            # messages and nothing of another application is touched.
            base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") >= 3 else redis_url
            redis_url = base + "/13"
        else:
            redis_url, valkey = start_valkey()
            cleanups.append(valkey.stop)
            process = getattr(valkey, "_process", None) or getattr(valkey, "process", None)
            redis_pid = getattr(process, "pid", None)
        upgrade(database_url)
        sim = start_simulator(scenario, workdir, workdir / "simulator.log")
        cleanups.append(sim.stop)
        engine = sa.create_engine(_psycopg(database_url), pool_pre_ping=True)
        stack = Stack(
            workdir,
            database_url,
            redis_url,
            sim,
            engine,
            postgres_pid,
            redis_pid,
            embedded=not os.environ.get("DATABASE_URL"),
        )
        cleanups.append(stack.close)
        yield stack
    finally:
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                cleanup()


def _psycopg(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _own_database(server_url: str, cleanups: list[Any]) -> str:
    """A fresh database on the server of DATABASE_URL, dropped at the end."""
    url = sa.make_url(_psycopg(server_url))
    name = f"promobulk_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    cleanups.append(drop)
    return url.set(database=name).render_as_string(hide_password=False)


def make_workdir(base: Path | None = None) -> Path:
    return Path(tempfile.mkdtemp(prefix="promobulk-bench-", dir=base))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
