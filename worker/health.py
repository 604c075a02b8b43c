"""Is the machinery around the jobs alive: do workers answer, did the sweep run lately, how
many messages wait, how much of the API's rate is in use. Read by `doctor`, the console's
health strip and the progress display; each answer is None when it could not be had, so a
dead Redis or broker shows as unknown, never as a traceback.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import redis
from celery import Celery

from worker.config import Settings
from worker.criteo.usage import Usage, read_usage

SWEEP_LAST_RUN_KEY = "promobulk:sweep:last_run"
SWEEP_RUNS_KEY = "promobulk:sweep:runs"
SWEEP_RUNS_KEPT = 200


@dataclass(frozen=True, slots=True)
class Health:
    workers: list[str] | None  # worker nodes that answered a ping
    sweep_last_run: datetime | None
    queue_depth: int | None  # messages waiting in the broker
    usage: Usage | None  # the app's calls a minute, the last 429
    rate_limit_per_minute: int
    sweep_by: str | None = None  # host:pid of the worker that swept last


@dataclass(frozen=True, slots=True)
class SweepRun:
    """One sweep: which process ran it (host:pid), from when to when (epoch seconds)."""

    by: str
    started: float
    ended: float
    reclaimed: int
    dispatched: int


def record_sweep(client: redis.Redis, run: SweepRun) -> None:
    """The sweep's last run, and the latest runs (newest first) for `doctor` and the tests."""
    with client.pipeline() as pipe:
        pipe.set(SWEEP_LAST_RUN_KEY, f"{run.ended:.3f}")
        pipe.lpush(SWEEP_RUNS_KEY, json.dumps(asdict(run)))
        pipe.ltrim(SWEEP_RUNS_KEY, 0, SWEEP_RUNS_KEPT - 1)
        pipe.execute()


def sweep_runs(client: redis.Redis, limit: int = SWEEP_RUNS_KEPT) -> list[SweepRun]:
    return [SweepRun(**json.loads(raw)) for raw in client.lrange(SWEEP_RUNS_KEY, 0, limit - 1)]


def sweep_last_run(client: redis.Redis) -> datetime | None:
    value = client.get(SWEEP_LAST_RUN_KEY)
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def workers_answering(celery: Celery, timeout: float = 1.0) -> list[str] | None:
    """The Celery worker nodes that answered a ping within `timeout`; None: no broker."""
    try:
        replies = celery.control.ping(timeout=timeout) or []
    except Exception:  # an unreachable broker is an answer here ("unknown"), not a crash
        return None
    return sorted(name for reply in replies for name in reply)


def queue_depth(celery: Celery) -> int | None:
    from worker.tasks import waiting_messages

    try:
        return waiting_messages(celery)
    except Exception:  # as above
        return None


def check(settings: Settings, *, ping_timeout: float = 1.0) -> Health:
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        last_run: datetime | None = sweep_last_run(client)
        usage: Usage | None = read_usage(client, settings.criteo_client_id)
        by = next((run.by for run in sweep_runs(client, 1)), None)
    except redis.RedisError:
        last_run = usage = by = None
    finally:
        client.close()
    from worker.tasks import make_celery

    celery = make_celery(settings)
    return Health(
        workers=workers_answering(celery, ping_timeout),
        sweep_last_run=last_run,
        queue_depth=queue_depth(celery),
        usage=usage,
        rate_limit_per_minute=settings.criteo_rate_limit_per_minute,
        sweep_by=by,
    )
