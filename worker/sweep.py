"""The safety net: expired leases back to the queue, lost or parked chunks sent again, and
notifications whose message was lost sent after all.

With the broker's queues empty, any chunk first in line that was not just dispatched is sent
again: its message was lost (a Redis that restarted empty). With messages waiting, only chunks
not dispatched for a long time are, so a long night's queue is not flooded with copies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker.config import Settings
from worker.db.chunks import ChunkRepository
from worker.db.notifications import NotificationRepository
from worker.db.records import Dispatch


@dataclass(frozen=True, slots=True)
class Swept:
    reclaimed: int
    dispatched: int
    notifications: int


def sweep(
    engine: Engine,
    settings: Settings,
    *,
    queue_idle: bool,
    dispatch: Dispatch,
    notify: Callable[[int], None],
) -> Swept:
    stale = settings.sweep_interval_seconds if queue_idle else settings.redispatch_after_seconds
    with Session(engine) as session:
        chunks = ChunkRepository(session)
        reclaimed = chunks.reclaim_expired()
        session.commit()
        due = chunks.runnable(stale_seconds=stale)
        session.commit()
        unsent = NotificationRepository(session).unsent(settings.sweep_interval_seconds)
    dispatch(due)
    for job_id in unsent:
        notify(job_id)
    return Swept(reclaimed, len(due), len(unsent))
