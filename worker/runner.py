"""Runs one chunk: claim → read the line item → plan → one write per action kind → outcomes.

Plain async code with its dependencies passed in; the Celery task only calls `run_chunk`.
Outcomes are stored after every call, so a crash loses at most the call in flight, and that
call is harmless to repeat (targets are absolute). The fewest calls whatever the API does:

- a kind's SKUs go in as few requests as the API's limits allow (learned, shared by every
  process: an ids cap or a 413 seen once cuts every later batch before it is sent);
- a 400 whose problems name SKUs: those SKUs fail, the rest is sent again without them;
- a 400 whose problems name none: the refused SKUs are found by group testing, using the
  counts the API gives (`worker.domain.isolation`);
- a 200 with warnings: named SKUs fail; unnamed warnings are settled by reading the line item;
- a bid on a product already there, written by an append whose response proves nothing (a 204),
  is confirmed by a read-back, per the settings; the read-back stops at the last page it needs.

A dry-run job stops after the plan: the read is made, no write is, and each SKU a call would
have carried is recorded `succeeded` with the state the call would have left (its "after").
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker import metrics
from worker.config import Settings
from worker.criteo.errors import (
    Forbidden,
    LineItemNotFound,
    PermanentError,
    RequestTooLarge,
    TransientError,
    ValidationRejected,
    problem_kind,
)
from worker.criteo.learned import WriteLimits
from worker.criteo.models import Problem, ProductState, ProductWrite, WriteResult, entry_bytes
from worker.db.chunks import ChunkRepository
from worker.db.items import ItemRepository
from worker.db.records import ClaimedChunk, Dispatch, FinishedChunk
from worker.db.sql import LeaseLost
from worker.domain.backoff import backoff
from worker.domain.enums import ChunkStatus, ErrorKind, ItemStatus, Priority
from worker.domain.guardrails import guardrails_from_options
from worker.domain.isolation import Isolation, Refusal
from worker.domain.money import format_bid
from worker.domain.planner import (
    CallKind,
    Outcome,
    Snapshot,
    WantedItem,
    expected_after,
    plan_chunk,
    reached,
)

log = logging.getLogger("promobulk.runner")


class ApiClient(Protocol):
    async def get_products(
        self,
        line_item_id: int,
        *,
        priority: Priority = ...,
        until: Collection[str] | None = ...,
    ) -> list[ProductState]: ...
    async def write_limits(self, action: str) -> WriteLimits: ...
    async def append_products(
        self, line_item_id: int, items: Sequence[ProductWrite], *, priority: Priority = ...
    ) -> WriteResult: ...
    async def delete_products(
        self, line_item_id: int, sku_ids: Sequence[str], *, priority: Priority = ...
    ) -> WriteResult: ...
    async def pause_products(
        self, line_item_id: int, sku_ids: Sequence[str], *, priority: Priority = ...
    ) -> WriteResult: ...
    async def unpause_products(
        self, line_item_id: int, sku_ids: Sequence[str], *, priority: Priority = ...
    ) -> WriteResult: ...


class _Cancelled(Exception):
    """The job was cancelled: the runner stops at a safe point, between two calls."""


class _Stopping(Exception):
    """The worker is shutting down: the runner hands the chunk back at a safe point."""


class ChunkResult(StrEnum):
    DONE = "done"
    PARKED = "parked"
    NOT_CLAIMED = "not_claimed"
    LEASE_LOST = "lease_lost"
    RELEASED = "released"


class ReadBack(StrEnum):
    """When a bid is confirmed by reading the line item back after an append."""

    AMBIGUOUS = "ambiguous"
    ALWAYS = "always"


@dataclass
class RunnerDeps:
    engine: Engine
    client: ApiClient
    settings: Settings
    dispatch: Dispatch | None = None
    notify: Callable[[int], None] | None = None  # a job ended: send its completion notification
    stopping: Callable[[], bool] | None = None  # the worker is shutting down: release the chunk


def _failed(
    item_id: int,
    before: Snapshot | None,
    kind: ErrorKind,
    message: str,
    code: str | None = None,
    trace_id: str | None = None,
) -> Outcome:
    """A SKU that failed and was left as it was."""
    return Outcome(item_id, ItemStatus.FAILED, before, before, kind, code, message, trace_id)


def _problem_outcome(item: WantedItem, problem: Problem, before: Snapshot | None) -> Outcome:
    return _failed(
        item.item_id,
        before,
        problem_kind(problem),
        _message(problem),
        problem.code or None,
        problem.trace_id,
    )


def _message(problem: Problem) -> str:
    return ": ".join(p for p in (problem.title, problem.detail) if p) or problem.code


def _weigher(kind: CallKind) -> Callable[[WantedItem], int]:
    """An item's share of a request body of this kind, in bytes (bids go only on an append)."""
    if kind is CallKind.APPEND:
        return lambda i: entry_bytes(i.sku_id, i.sent_bid)
    return lambda i: entry_bytes(i.sku_id)


def _kind_for(error: PermanentError) -> ErrorKind:
    if isinstance(error, Forbidden):
        return ErrorKind.FORBIDDEN
    if isinstance(error, LineItemNotFound):
        return ErrorKind.LINE_ITEM_NOT_FOUND
    return ErrorKind.API_ERROR


@dataclass
class _Execution:
    """The state of one chunk attempt: what was read, what is settled, what awaits a read-back."""

    deps: RunnerDeps
    chunk: ClaimedChunk
    session: Session
    before: dict[int, Snapshot | None] = field(default_factory=dict)
    to_verify: dict[int, tuple[WantedItem, Problem | None]] = field(default_factory=dict)

    @property
    def items(self) -> ItemRepository:
        return ItemRepository(self.session)

    @property
    def chunks(self) -> ChunkRepository:
        return ChunkRepository(self.session)

    @property
    def li(self) -> int:
        return self.chunk.line_item_id

    def record(self, outcomes: Sequence[Outcome]) -> None:
        recorded = self.items.record_outcomes(self.chunk, outcomes)
        self.session.commit()
        for outcome in outcomes:
            if outcome.item_id in recorded:
                metrics.sku_outcome(outcome.status, outcome.error_kind, dry_run=self.chunk.dry_run)

    def stop_if_stopping(self) -> None:
        """Before every call: a worker shutting down hands its chunk back instead of sending."""
        if self.deps.stopping is not None and self.deps.stopping():
            raise _Stopping

    def checkpoint(self) -> None:
        """Before every call: renew the lease, and stop here if the job is being cancelled."""
        self.stop_if_stopping()
        cancel = self.chunks.heartbeat(self.chunk)
        self.session.commit()
        if cancel:
            raise _Cancelled

    async def read(self, until: Collection[str] | None = None) -> dict[str, Snapshot]:
        self.checkpoint()
        products = await self.deps.client.get_products(
            self.li, priority=self.chunk.priority, until=until
        )
        return {p.sku_id: Snapshot(p.bid_override, p.status) for p in products}

    async def send(self, kind: CallKind, batch: Sequence[WantedItem]) -> WriteResult:
        self.stop_if_stopping()
        if self.chunks.heartbeat(self.chunk):
            self.session.commit()
            raise _Cancelled
        self.items.count_attempt([(i.item_id, self.before.get(i.item_id)) for i in batch])
        self.session.commit()
        client, priority = self.deps.client, self.chunk.priority
        skus = [i.sku_id for i in batch]
        if kind is CallKind.APPEND:
            writes = [ProductWrite(i.sku_id, i.sent_bid) for i in batch]
            return await client.append_products(self.li, writes, priority=priority)
        if kind is CallKind.UNPAUSE:
            return await client.unpause_products(self.li, skus, priority=priority)
        if kind is CallKind.PAUSE:
            return await client.pause_products(self.li, skus, priority=priority)
        return await client.delete_products(self.li, skus, priority=priority)

    async def call(self, kind: CallKind, items: list[WantedItem]) -> None:
        """The items of one kind in as few requests as the API's limits allow, and whatever
        finding its refused SKUs costs."""
        limits = await self.deps.client.write_limits(kind)
        batches = deque(limits.split(items, _weigher(kind)))
        while batches:
            batch = batches.popleft()
            try:
                result = await self.send(kind, batch)
            except RequestTooLarge as too_large:
                batches.extendleft(reversed(self._cut(kind, batch, too_large)))
                continue
            except ValidationRejected as rejected:
                batches.extend(await self._isolate(kind, batch, rejected))
                continue
            self.record(self._accepted(kind, batch, result))

    def _cut(
        self, kind: CallKind, batch: list[WantedItem], too_large: RequestTooLarge
    ) -> list[list[WantedItem]]:
        """A batch the API found too large, cut to what it is now known to take (else halved);
        a single SKU too large for it fails."""
        parts = (too_large.limits or WriteLimits()).split(batch, _weigher(kind))
        if len(parts) > 1:
            return parts
        if len(batch) > 1:
            half = len(batch) // 2
            return [batch[:half], batch[half:]]
        item = batch[0]
        before = self.before.get(item.item_id)
        self.record(
            [_failed(item.item_id, before, ErrorKind.API_ERROR, str(too_large), too_large.code)]
        )
        return []

    async def _isolate(
        self, kind: CallKind, batch: list[WantedItem], rejected: ValidationRejected
    ) -> list[list[WantedItem]]:
        """Settle a refused batch: named SKUs fail, the rest is found by group testing. Returns
        what must go again from the start (the API's limits changed under us meanwhile)."""
        named = self._named(batch, rejected.problems)
        seen = {p.code: p for p in rejected.problems if not p.sku_id}
        tally = rejected.tally()
        isolation = Isolation(
            [i for i in batch if i not in named], tally, sure=bool(tally.counts) or not named
        )
        while (test := isolation.next_test()) is not None:
            try:
                result = await self.send(kind, test)
            except RequestTooLarge as too_large:
                limits = too_large.limits or WriteLimits()
                return limits.split(isolation.unsettled(), _weigher(kind))
            except ValidationRejected as again:
                found = self._named(test, again.problems)
                seen.update((p.code, p) for p in again.problems if not p.sku_id)
                isolation.failed(again.tally(), {i: p.code for i, p in found.items()})
            else:
                isolation.passed()
                self.record(self._accepted(kind, test, result))
            self.record(self._refusals(isolation.refusals(), seen))
        self.record(self._refusals(isolation.refusals(), seen))
        return []

    def _named(
        self, batch: Sequence[WantedItem], problems: Sequence[Problem]
    ) -> dict[WantedItem, Problem]:
        """The batch's SKUs its problems name, each with its first problem; recorded failed."""
        by_sku = {i.sku_id: i for i in batch}
        named: dict[WantedItem, Problem] = {}
        for problem in problems:
            item = by_sku.get(problem.sku_id or "")
            if item is not None and item not in named:
                named[item] = problem
        self.record([_problem_outcome(i, p, self.before.get(i.item_id)) for i, p in named.items()])
        return named

    def _refusals(
        self, refusals: Sequence[Refusal[WantedItem]], seen: dict[str, Problem]
    ) -> list[Outcome]:
        """Outcomes of SKUs found refused by group testing, with the problem of their code."""
        outcomes = []
        for refusal in refusals:
            item_id = refusal.item.item_id
            problem = next((seen[c] for c in refusal.codes if c in seen), None)
            if problem is None:
                message = "refused by the API without a reason"
                outcomes.append(
                    _failed(item_id, self.before.get(item_id), ErrorKind.VALIDATION, message)
                )
                continue
            outcomes.append(
                _failed(
                    item_id,
                    self.before.get(item_id),
                    problem_kind(problem),
                    f"{problem.title or problem.code} (the API named no SKU; found by splitting"
                    " the batch)",
                    problem.code or None,
                    problem.trace_id,
                )
            )
        return outcomes

    def _accepted(
        self, kind: CallKind, batch: list[WantedItem], result: WriteResult
    ) -> list[Outcome]:
        named = {p.sku_id: p for p in result.warnings if p.sku_id}
        unnamed = next((p for p in result.warnings if not p.sku_id), None)
        readback = ReadBack(self.deps.settings.bid_readback)
        outcomes: list[Outcome] = []
        for item in batch:
            before = self.before.get(item.item_id)
            if item.sku_id in named:
                outcomes.append(_problem_outcome(item, named[item.sku_id], before))
                continue
            # A bid given while adding a product is applied (documented); one for a product
            # already there may be ignored, and only a response with a body says it was not.
            bid_write = kind is CallKind.APPEND and item.sent_bid is not None
            unproven = not result.has_body and before is not None
            if unnamed is not None or (bid_write and (readback is ReadBack.ALWAYS or unproven)):
                self.to_verify[item.item_id] = (item, unnamed)
                continue
            outcomes.append(
                Outcome(
                    item.item_id,
                    ItemStatus.SUCCEEDED,
                    before=before,
                    after=expected_after(item, before),
                    trace_id=result.trace_id,
                )
            )
        return outcomes

    async def verify(self) -> None:
        """Settle what the responses did not prove by reading the line item once."""
        if not self.to_verify:
            return
        current = await self.read(until={item.sku_id for item, _ in self.to_verify.values()})
        outcomes: list[Outcome] = []
        for item, warning in self.to_verify.values():
            before = self.before.get(item.item_id)
            now = current.get(item.sku_id)
            if reached(item, now):
                outcomes.append(Outcome(item.item_id, ItemStatus.SUCCEEDED, before, now))
            elif warning is not None:
                outcomes.append(_problem_outcome(item, warning, before))
            else:
                outcomes.append(
                    Outcome(
                        item.item_id,
                        ItemStatus.FAILED,
                        before=before,
                        after=now,
                        error_kind=ErrorKind.BID_NOT_APPLIED,
                        error_message=(
                            f"the API accepted bid {format_bid(item.desired_bid)} but the line"
                            f" item shows {format_bid(now.bid) if now else 'no product'}"
                        ),
                    )
                )
        self.to_verify.clear()
        self.record(outcomes)

    def fail_pending(self, kind: ErrorKind, message: str, code: str | None = None) -> None:
        """Every SKU of the chunk still without an outcome fails the same way."""
        pending = self.items.pending(self.chunk)
        self.record(
            [_failed(i.item_id, self.before.get(i.item_id), kind, message, code) for i in pending]
        )

    def cancel_pending(self) -> None:
        pending = self.items.pending(self.chunk)
        self.record([Outcome(i.item_id, ItemStatus.CANCELLED, None, None) for i in pending])

    async def run(self) -> None:
        items = self.items.pending(self.chunk)
        dry_run = self.chunk.dry_run
        skip_read = bool(self.chunk.options.get("skip_read")) and not dry_run
        current = None if skip_read else await self.read()
        guardrails = guardrails_from_options(
            self.chunk.options, self.deps.settings.max_change_ratio
        )
        plan = plan_chunk(items, current, guardrails)
        self.before = plan.before
        self.record(plan.decided)
        if dry_run:
            # The same plan, no write: what each call would have done is recorded as its outcome.
            self.record(
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
            await self.call(kind, batch)
        await self.verify()


def _park_delay(settings: Settings, attempt: int) -> float:
    base = settings.chunk_park_base_seconds
    cap = settings.chunk_park_max_seconds
    return backoff(attempt, base=base, cap=cap, rand=random.random, floor=base)


def _finish(
    session: Session, chunk: ClaimedChunk, status: ChunkStatus, error: str | None = None
) -> FinishedChunk:
    finished = ChunkRepository(session).finish(chunk, status, error)
    session.commit()
    return finished


def _set_aside(
    deps: RunnerDeps, session: Session, chunk: ClaimedChunk, reason: TransientError | _Stopping
) -> tuple[ChunkResult, str]:
    """A chunk that cannot go on now: parked after a transient failure (the sweep sends it when
    due), or released when its worker stops (sent again at once, for any worker to take; the
    attempt is not counted). Its SKUs with an outcome keep it; the rest stay pending."""
    chunks = ChunkRepository(session)
    if isinstance(reason, _Stopping):
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
    settings = deps.settings
    with Session(deps.engine, expire_on_commit=False) as session:
        chunk = ChunkRepository(session).claim(chunk_id, settings.chunk_lease_seconds)
        session.commit()
        if chunk is None:
            return ChunkResult.NOT_CLAIMED, ""
        structlog.contextvars.bind_contextvars(job_id=chunk.job_id, line_item_id=chunk.line_item_id)
        execution = _Execution(deps, chunk, session)
        status, error = ChunkStatus.DONE, None
        try:
            if chunk.cancel_requested:
                execution.cancel_pending()
                status = ChunkStatus.CANCELLED
            elif chunk.attempt > settings.chunk_max_attempts:
                error = f"gave up after {chunk.attempt - 1} attempts; last: {chunk.last_error}"
                execution.fail_pending(ErrorKind.TRANSIENT_EXHAUSTED, error)
                status = ChunkStatus.FAILED
            else:
                try:
                    await execution.run()
                except _Cancelled:
                    session.rollback()
                    execution.cancel_pending()
                    status = ChunkStatus.CANCELLED
                except (TransientError, _Stopping) as exc:
                    session.rollback()
                    return _set_aside(deps, session, chunk, exc)
                except PermanentError as exc:
                    session.rollback()
                    log.warning("chunk %s failed for good: %s", chunk_id, exc)
                    error = str(exc)
                    execution.fail_pending(_kind_for(exc), error, getattr(exc, "code", None))
            finished = _finish(session, chunk, status, error)
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
