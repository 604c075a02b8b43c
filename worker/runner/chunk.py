"""A chunk from its claim to its end: plan and send, or settle a cancel, or set it aside (parked
after a transient failure, released when its worker stops), then finish it and pass its line
item to the next chunk in line."""

from __future__ import annotations

import logging
import random
import time

import structlog
from sqlalchemy.orm import Session

from worker import metrics
from worker.config import Settings
from worker.criteo.errors import PermanentError, TransientError
from worker.db.chunks import ChunkRepository
from worker.db.records import ClaimedChunk
from worker.db.sql import LeaseLost
from worker.domain.backoff import backoff
from worker.domain.enums import ChunkStatus, ErrorKind, ItemStatus
from worker.domain.guardrails import guardrails_from_options
from worker.domain.planner import Outcome, expected_after, plan_chunk
from worker.runner.deps import Cancelled, ChunkResult, RunnerDeps, Stopping
from worker.runner.execution import Execution, kind_for
from worker.runner.readback import settle_cancelled, verify
from worker.runner.refusals import call

log = logging.getLogger("promobulk.runner")


async def _run(ex: Execution) -> None:
    items = ex.items.pending(ex.chunk)
    ex.load_facts(items)
    dry_run = ex.chunk.dry_run
    skip_read = bool(ex.chunk.options.get("skip_read")) and not dry_run
    current = None if skip_read else await ex.read()
    guardrails = guardrails_from_options(ex.chunk.options, ex.deps.settings.max_change_ratio)
    plan = plan_chunk(items, current, guardrails, ex.predict)
    ex.take(plan)
    if dry_run:
        # The same plan, no write: what each call would have done is recorded as its outcome.
        ex.record(
            [
                Outcome(
                    i.item_id,
                    ItemStatus.SUCCEEDED,
                    plan.before[i.item_id],
                    expected_after(i, plan.before[i.item_id]),
                )
                for _, batch in plan.ordered_calls()
                for i in batch
            ]
        )
        return
    for kind, batch in plan.ordered_calls():
        await call(ex, kind, batch)
    await verify(ex)


async def _attempt(ex: Execution) -> tuple[ChunkStatus, str | None]:
    """The chunk's end status and error, unless it is set aside (an exception says why)."""
    chunk = ex.chunk
    if not chunk.cancel_requested:
        if chunk.attempt > ex.deps.settings.chunk_max_attempts:
            error = f"gave up after {chunk.attempt - 1} attempts; last: {chunk.last_error}"
            ex.fail_pending(ErrorKind.TRANSIENT_EXHAUSTED, error)
            return ChunkStatus.FAILED, error
        try:
            await _run(ex)
            return ChunkStatus.DONE, None
        except Cancelled:
            ex.session.rollback()
    await settle_cancelled(ex)
    return ChunkStatus.CANCELLED, None


def _park_delay(settings: Settings, attempt: int) -> float:
    base = settings.chunk_park_base_seconds
    cap = settings.chunk_park_max_seconds
    return backoff(attempt, base=base, cap=cap, rand=random.random, floor=base)


def _set_aside(
    deps: RunnerDeps, session: Session, chunk: ClaimedChunk, reason: TransientError | Stopping
) -> tuple[ChunkResult, str]:
    """A chunk that cannot go on now: parked after a transient failure (the sweep sends it when
    due), or released when its worker stops (sent again at once, for any worker to take; the
    attempt is not counted). Its SKUs with an outcome keep it; the rest stay pending."""
    chunks = ChunkRepository(session)
    if isinstance(reason, Stopping):
        chunks.release(chunk)
        session.commit()
        log.info("chunk %s released: its worker is stopping", chunk.id)
        if deps.dispatch is not None:
            deps.dispatch([(chunk.id, chunk.priority)])
        return ChunkResult.RELEASED, ChunkResult.RELEASED.value
    delay = max(_park_delay(deps.settings, chunk.attempt), reason.retry_after or 0.0)
    chunks.park(chunk, delay, str(reason))
    session.commit()
    log.warning("chunk %s parked after a transient error: %s", chunk.id, reason)
    return ChunkResult.PARKED, ChunkResult.PARKED.value


async def run_chunk(deps: RunnerDeps, chunk_id: int) -> ChunkResult:
    """Run one chunk to its end, or park it; every SKU leaves with one outcome or stays pending.

    Every log record made meanwhile, by any logger, carries the chunk's ids."""
    started = time.monotonic()
    structlog.contextvars.bind_contextvars(chunk_id=chunk_id)
    try:
        result, label = await _run_claimed(deps, chunk_id)
    finally:
        structlog.contextvars.unbind_contextvars("chunk_id", "job_id", "line_item_id")
    if result is not ChunkResult.NOT_CLAIMED:
        metrics.CHUNK_SECONDS.labels(label).observe(time.monotonic() - started)
    return result


async def _run_claimed(deps: RunnerDeps, chunk_id: int) -> tuple[ChunkResult, str]:
    """The chunk's result, and how it ended for the latency histogram."""
    with Session(deps.engine, expire_on_commit=False) as session:
        chunk = ChunkRepository(session).claim(chunk_id, deps.settings.chunk_lease_seconds)
        session.commit()
        if chunk is None:
            return ChunkResult.NOT_CLAIMED, ""
        structlog.contextvars.bind_contextvars(job_id=chunk.job_id, line_item_id=chunk.line_item_id)
        execution = Execution(deps, chunk, session)
        try:
            try:
                status, error = await _attempt(execution)
            except (TransientError, Stopping) as exc:
                session.rollback()
                return _set_aside(deps, session, chunk, exc)
            except PermanentError as exc:
                session.rollback()
                log.warning("chunk %s failed for good: %s", chunk_id, exc)
                status, error = ChunkStatus.DONE, str(exc)
                execution.fail_pending(kind_for(exc), error, getattr(exc, "code", None))
            finished = ChunkRepository(session).finish(chunk, status, error)
            session.commit()
        except LeaseLost:
            session.rollback()
            log.warning("chunk %s: lease lost, leaving it to its new owner", chunk_id)
            return ChunkResult.LEASE_LOST, ChunkResult.LEASE_LOST.value
    log.info("chunk %s %s", chunk_id, status.value)
    if deps.dispatch is not None and finished.next_chunks:
        deps.dispatch(finished.next_chunks)
    if deps.notify is not None and finished.job_status is not None:
        deps.notify(chunk.job_id)
    return ChunkResult.DONE, status.value
