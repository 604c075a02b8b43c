"""Retention: the items of jobs finished more than `PROMOBULK_RETENTION_DAYS` ago are deleted,
and so are refusal facts past their expiry (`PROMOBULK_FACTS_TTL_HOURS`).

A job's row stays, with its final counts, marked `items_pruned_at`. Items go in batches, one
short transaction each, so the delete never holds more than a batch of row locks and running
jobs, whose items are other rows, never wait on it. A run stops after `max_seconds` and the
next run picks up where it stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker.db.facts import FactRepository
from worker.db.items import ItemRepository
from worker.db.jobs import JobRepository

log = logging.getLogger("promobulk.retention")


@dataclass(frozen=True)
class Pruned:
    jobs: int
    items: int
    facts: int = 0


def prune_finished_jobs(
    engine: Engine, *, retention_days: float, batch_size: int, max_seconds: float = 600.0
) -> Pruned:
    """Delete the items of jobs finished longer ago than `retention_days` (0: keep forever), and
    expired refusal facts."""
    deadline = time.monotonic() + max_seconds
    facts = _prune_facts(engine, batch_size, deadline)
    if retention_days <= 0:
        return Pruned(0, 0, facts)
    jobs = items = 0
    with Session(engine) as session:
        while time.monotonic() < deadline:
            due = JobRepository(session).to_prune(retention_days)
            session.commit()
            if not due:
                break
            for job_id in due:
                deleted, complete = _prune_job(session, job_id, batch_size, deadline)
                items += deleted
                if not complete:
                    break
                jobs += 1
    if jobs or items or facts:
        log.info(
            "retention: %d item(s) deleted, %d job(s) pruned, %d expired fact(s) deleted",
            items,
            jobs,
            facts,
        )
    return Pruned(jobs, items, facts)


def _prune_facts(engine: Engine, batch_size: int, deadline: float) -> int:
    deleted = 0
    with Session(engine) as session:
        while time.monotonic() < deadline:
            n = FactRepository(session).prune(batch_size)
            session.commit()
            deleted += n
            if n < batch_size:
                break
    return deleted


def _prune_job(session: Session, job_id: int, batch_size: int, deadline: float) -> tuple[int, bool]:
    """Items deleted, and whether the job was finished (and marked) before the deadline."""
    deleted = 0
    while True:
        n = ItemRepository(session).delete_batch(job_id, batch_size)
        session.commit()
        deleted += n
        if n < batch_size:
            JobRepository(session).mark_pruned(job_id)
            session.commit()
            return deleted, True
        if time.monotonic() >= deadline:
            return deleted, False
