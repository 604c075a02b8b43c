"""Celery: the app, its settings, the per-process runtime, and tasks that call one function each.

Each prefork child owns one event loop, one aiohttp session, one async Redis client and one
SQLAlchemy engine, made when the child starts (`worker_process_init`) and closed when it stops.
A task runs its coroutine on that loop; nothing calls `asyncio.run` per task.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import mmap
import os
import socket
from collections.abc import Sequence
from functools import cache
from typing import Any, cast

import redis
import redis.exceptions
import sqlalchemy
import sqlalchemy.exc
from celery import Celery, Task, signals
from sqlalchemy import Engine
from sqlalchemy.pool import NullPool

from worker.config import Settings, get_settings
from worker.criteo.runtime import ClientRuntime
from worker.db.engine import make_engine
from worker.db.records import ChunkRef
from worker.domain.access import Caller
from worker.domain.enums import Priority, Role
from worker.jobs.errors import Refused
from worker.jobs.service import Jobs
from worker.logs import configure_logging
from worker.metrics import serve_worker_metrics
from worker.notify import Delivery, deliver, retry_delay
from worker.retention import prune_finished_jobs
from worker.runner import RunnerDeps, run_chunk
from worker.sweep import PRUNE_TURN_KEY, Sweeper, Swept, sweep, sweep_in_turn, take_turn

log = logging.getLogger("promobulk.tasks")

QUEUES = {Priority.HIGH: "promobulk.high", Priority.NORMAL: "promobulk.normal"}


def make_celery(settings: Settings) -> Celery:
    app = Celery("promobulk", broker=settings.celery_broker_url)
    app.conf.update(
        task_acks_late=True,
        # A killed child's message goes back to the queue; the chunk's attempt cap in the
        # database stops a chunk that kills its worker from looping forever.
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=settings.task_time_limit - 15,
        task_ignore_result=True,
        task_default_queue=QUEUES[Priority.NORMAL],
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(settings),
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep": {"task": "promobulk.sweep", "schedule": settings.sweep_interval_seconds},
            "prune": {"task": "promobulk.prune", "schedule": settings.retention_interval_seconds},
        },
    )
    return app


def _transport_options(settings: Settings) -> dict[str, Any]:
    """Redis emulates acknowledgements and queue order; RabbitMQ has both natively.

    On RabbitMQ an unacknowledged message is redelivered only when its consumer goes away, and
    a worker consumes both queues at once (a dedicated `-Q promobulk.high` worker gives high
    priority a reserved lane); its `consumer_timeout` must exceed PROMOBULK_TASK_TIME_LIMIT.
    """
    if not settings.celery_broker_url.startswith(("redis://", "rediss://", "valkey://")):
        return {}
    return {
        # Longer than the hard time limit, or Redis would redeliver a running chunk.
        "visibility_timeout": settings.task_time_limit + 600,
        # Listed queues are read in order: high priority first.
        "queue_order_strategy": "priority",
    }


app = make_celery(get_settings())


# One shared byte, set by a worker's main process when its warm shutdown begins and read by its
# prefork children, which share this page from their fork on: a running chunk is released at its
# next safe point instead of holding the shutdown until it ends (see `runner`).
_STOPPING = mmap.mmap(-1, 1)


@signals.worker_shutting_down.connect
def _shutting_down(**_: Any) -> None:
    _STOPPING[0] = 1


def stopping() -> bool:
    return _STOPPING[0] == 1


class WorkerRuntime:
    """What one worker process keeps: loop, engine, API client stack."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.engine: Engine = make_engine(settings.sqlalchemy_url)
        self.api = self.loop.run_until_complete(ClientRuntime.open(settings))
        self.deps = RunnerDeps(
            self.engine,
            self.api.client,
            settings,
            dispatch_chunks,
            dispatch_notification,
            stopping,
        )

    def close(self) -> None:
        self.loop.run_until_complete(self.api.aclose())
        self.loop.close()
        self.engine.dispose()


_runtime: WorkerRuntime | None = None


@signals.setup_logging.connect
def _setup_logging(loglevel: str | int | None = None, **_: Any) -> None:
    """Worker and beat: our JSON logging instead of Celery's; children inherit it at fork."""
    configure_logging(get_settings(), level=loglevel)


@signals.worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """The worker's main process serves the metrics its prefork children write."""
    port = get_settings().worker_metrics_port
    if port:
        serve_worker_metrics(port)


@signals.worker_process_init.connect
def _start_runtime(**_: Any) -> None:
    global _runtime
    _runtime = WorkerRuntime(get_settings())


@signals.worker_process_shutdown.connect
def _stop_runtime(**_: Any) -> None:
    global _runtime
    if _runtime is not None:
        _runtime.close()
        _runtime = None


def runtime() -> WorkerRuntime:
    """The process's runtime; made on first use where no child-start signal fires (solo pool)."""
    global _runtime
    if _runtime is None:
        _runtime = WorkerRuntime(get_settings())
        atexit.register(_stop_runtime)
    return _runtime


# Postgres or Redis out of reach: try the message again shortly. A chunk already claimed stays
# ours until its lease expires (the sweep then reclaims it); one not yet claimed is claimed on
# retry.
INFRASTRUCTURE_ERRORS = (sqlalchemy.exc.OperationalError, redis.exceptions.ConnectionError)


@app.task(name="promobulk.run_chunk", bind=True, max_retries=20)
def run_chunk_task(self: Task[Any, str], chunk_id: int) -> str:
    rt = runtime()
    try:
        return rt.loop.run_until_complete(run_chunk(rt.deps, chunk_id)).value
    except INFRASTRUCTURE_ERRORS as exc:
        log.warning("chunk %s interrupted, retrying: %s", chunk_id, type(exc).__name__)
        raise self.retry(countdown=5) from None


def waiting_messages(celery: Celery | None = None) -> int:
    """Messages waiting in the broker's queues (Redis or RabbitMQ alike, through kombu)."""
    total = 0
    with (celery or app).connection_for_read() as connection:
        for queue in QUEUES.values():
            # A passive declare of a queue never declared fails (and closes the channel on
            # RabbitMQ): such a queue holds nothing.
            with contextlib.suppress(*connection.channel_errors), connection.channel() as channel:
                declared = cast(Any, channel).queue_declare(queue=queue, passive=True)
                total += int(declared.message_count)
    return total


# Who sweeps, in `worker.sweep`'s records: this host and process.
SWEEPER = f"{socket.gethostname()}:{os.getpid()}"


def _redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30)


def sweep_now(engine: Engine, by: str = SWEEPER) -> Swept | None:
    """The sweep, if it is our turn (see `worker.sweep`); None when it is not."""
    settings = get_settings()

    def run() -> Swept:
        return sweep(
            engine,
            settings,
            queue_idle=waiting_messages() == 0,
            dispatch=dispatch_chunks,
            notify=dispatch_notification,
        )

    client = _redis(settings)
    try:
        return sweep_in_turn(client, settings, by, run)
    finally:
        client.close()


@app.task(name="promobulk.sweep")
def sweep_task() -> dict[str, int] | None:
    """The sweep as a task, for `promobulk beat` where it still runs: it takes its turn like
    the workers' own sweepers, so it never sweeps alongside them."""
    swept = sweep_now(runtime().engine)
    return None if swept is None else {"reclaimed": swept.reclaimed, "dispatched": swept.dispatched}


@cache
def _sweep_engine() -> Engine:
    """The main process's engine for its sweeps: no pool, so no connection is left open for the
    prefork children forked later to inherit."""
    return sqlalchemy.create_engine(get_settings().sqlalchemy_url, poolclass=NullPool)


def _offer() -> None:
    """The worker's sweeper: the sweep in its turn, and the retention run sent in its own."""
    sweep_now(_sweep_engine())
    settings = get_settings()
    client = _redis(settings)
    try:
        if take_turn(client, PRUNE_TURN_KEY, settings.retention_interval_seconds, SWEEPER):
            prune_task.apply_async(queue=QUEUES[Priority.NORMAL])
    finally:
        client.close()


_sweeper: Sweeper | None = None


@signals.worker_ready.connect
def _start_sweeper(**_: Any) -> None:
    """Every worker sweeps in turn: a deployment needs no beat (see `worker.sweep`)."""
    global _sweeper
    _sweeper = Sweeper(get_settings(), _offer)
    _sweeper.start()


@signals.worker_shutdown.connect
def _stop_sweeper(**_: Any) -> None:
    if _sweeper is not None:
        _sweeper.stop()


@app.task(name="promobulk.prune")
def prune_task() -> dict[str, int]:
    """The retention run: the items of long-finished jobs, in short batches."""
    settings = get_settings()
    pruned = prune_finished_jobs(
        runtime().engine,
        retention_days=settings.retention_days,
        batch_size=settings.retention_batch_size,
        max_seconds=settings.task_time_limit / 2,
    )
    return {"jobs": pruned.jobs, "items": pruned.items, "facts": pruned.facts}


def dispatch_chunks(chunks: Sequence[ChunkRef]) -> None:
    """Send one message per chunk; called only after the chunks' rows are committed.
    One producer (one connection) for the whole batch: a 10,000-chunk job is sent in one go."""
    if not chunks:
        return
    with app.producer_or_acquire() as producer:
        for chunk_id, priority in chunks:
            run_chunk_task.apply_async((chunk_id,), queue=QUEUES[priority], producer=producer)


@app.task(name="promobulk.notify_job", bind=True, max_retries=None)
def notify_job_task(self: Task[Any, str], job_id: int, attempt: int = 0) -> str:
    """POST a finished job's notification; a failed attempt comes back after a capped backoff."""
    rt = runtime()
    outcome = rt.loop.run_until_complete(deliver(rt.engine, rt.settings, job_id, attempt))
    if outcome is Delivery.RETRY:
        raise self.retry(args=(job_id, attempt + 1), countdown=retry_delay(rt.settings, attempt))
    return outcome.value


def dispatch_notification(job_id: int) -> None:
    """Called after the commit that ended the job; a duplicate is dropped by the attempt fence."""
    notify_job_task.apply_async((job_id,), queue=QUEUES[Priority.HIGH])


@app.task(name="promobulk.submit_job")
def submit_job_task(submitted_by: str, **fields: Any) -> dict[str, Any]:
    """For other Celery apps: `send_task("promobulk.submit_job", kwargs={"submitted_by": ...,
    "items": [...], ...}, queue="promobulk.normal")`; see `worker.client.send_job`. A refused
    job is logged with its reasons and stores nothing."""
    rt = runtime()
    try:
        caller = Caller(submitted_by, Role.SUBMIT)
        submitted = Jobs(rt.engine, rt.settings, dispatch_chunks, caller).submit_json(fields)
    except Refused as refused:
        log.warning("job from %s refused, nothing stored: %s", submitted_by, refused)
        return {"rejected": True, "reason": str(refused)}
    return {"job_id": submitted.id, "total": submitted.total, "created": submitted.created}
