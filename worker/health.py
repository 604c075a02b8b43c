"""Is the machinery around the jobs alive: do workers answer, did the sweep run lately, how
many messages wait, how much of the API's rate is in use. Read by `doctor`, the console's
health strip and the progress display; each answer is None when it could not be had, so a
dead Redis or broker shows as unknown, never as a traceback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from celery import Celery

from worker.config import Settings
from worker.criteo.usage import Usage, read_usage

SWEEP_LAST_RUN_KEY = "promobulk:sweep:last_run"


@dataclass(frozen=True, slots=True)
class Health:
    workers: list[str] | None  # worker nodes that answered a ping
    sweep_last_run: datetime | None
    queue_depth: int | None  # messages waiting in the broker
    usage: Usage | None  # the app's calls a minute, the last 429
    rate_limit_per_minute: int


def mark_swept(client: redis.Redis, now: float | None = None) -> None:
    client.set(SWEEP_LAST_RUN_KEY, f"{time.time() if now is None else now:.3f}")


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
    except redis.RedisError:
        last_run = usage = None
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
    )
