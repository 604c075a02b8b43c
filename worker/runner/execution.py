"""One attempt at a chunk: what was read and planned, what awaits a read-back, what the API has
taught, and the few ways the attempt touches the world (the API, the items, the facts), each
behind the checks that let a cancel or a shutdown stop it between two calls."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from worker import metrics
from worker.criteo.errors import (
    Forbidden,
    LineItemNotFound,
    PermanentError,
    problem_kind,
)
from worker.criteo.models import Problem, ProductWrite, WriteResult
from worker.db.chunks import ChunkRepository
from worker.db.facts import FactRepository
from worker.db.items import ItemRepository
from worker.db.records import ClaimedChunk
from worker.domain.enums import Action, ErrorKind, ItemStatus
from worker.domain.facts import Change, Fact, Prediction, learn, predict
from worker.domain.facts import Refusal as Lesson
from worker.domain.planner import CallKind, Outcome, Plan, Snapshot, WantedItem, failed
from worker.runner.deps import Cancelled, RunnerDeps, Stopping

Refused = tuple[WantedItem, Problem | None]  # a SKU the API refused, and what it said if named


def problem_outcome(item: WantedItem, problem: Problem, before: Snapshot | None) -> Outcome:
    message = ": ".join(p for p in (problem.title, problem.detail) if p) or problem.code
    return failed(
        item.item_id,
        before,
        problem_kind(problem),
        message,
        problem.code or None,
        problem.trace_id,
    )


def kind_for(error: PermanentError) -> ErrorKind:
    if isinstance(error, Forbidden):
        return ErrorKind.FORBIDDEN
    if isinstance(error, LineItemNotFound):
        return ErrorKind.LINE_ITEM_NOT_FOUND
    return ErrorKind.API_ERROR


def _refusal(problem: Problem | None) -> Lesson:
    if problem is None:
        return Lesson(None, "", "refused by the API without a reason", None)
    return Lesson(problem.code or None, problem.title, problem.detail, problem.trace_id)


@dataclass
class Execution:
    deps: RunnerDeps
    chunk: ClaimedChunk
    session: Session
    before: dict[int, Snapshot | None] = field(default_factory=dict)
    to_verify: dict[int, tuple[WantedItem, Problem | None]] = field(default_factory=dict)
    facts: list[Fact] = field(default_factory=list)
    planned: dict[int, WantedItem] = field(default_factory=dict)  # as sent (a bid may be raised)

    @property
    def items(self) -> ItemRepository:
        return ItemRepository(self.session)

    @property
    def chunks(self) -> ChunkRepository:
        return ChunkRepository(self.session)

    @property
    def li(self) -> int:
        return self.chunk.line_item_id

    # --- what the API taught ------------------------------------------------------------------

    def load_facts(self, items: Sequence[WantedItem]) -> None:
        accounts = {i.account_id for i in items if i.account_id is not None}
        skus = [i.sku_id for i in items]
        self.facts = FactRepository(self.session).for_line_item(self.li, skus, sorted(accounts))

    def predict(self, item: WantedItem) -> Prediction | None:
        """What the facts say of the item's change: the job's own refusals always count (a
        retry never pays twice), other jobs' unless the job turned prediction off."""
        if not self.facts:
            return None
        options = self.chunk.options
        return predict(
            self._change(item),
            self.facts,
            job_id=self.chunk.job_id,
            across_jobs=options.get("predict", True) is not False,
            clamp=options.get("clamp_to_min_bid") is True,
        )

    def take(self, plan: Plan) -> None:
        """The plan's before-values and its items as they will be sent, then its decisions."""
        self.before = plan.before
        self.planned = {i.item_id: i for _, batch in plan.ordered_calls() for i in batch}
        self.record(plan.decided)

    def _change(self, item: WantedItem) -> Change:
        return Change(self.li, item.account_id, item.sku_id, item.action, item.desired_bid)

    def _learn(self, refused: Sequence[Refused]) -> None:
        """Facts from validation refusals, committed on their own before the outcomes: a crash
        in between, or outcomes that cannot be written yet, never loses the lesson."""
        now = datetime.now(UTC)
        new = [
            fact
            for item, problem in refused
            if problem is None or problem_kind(problem) is ErrorKind.VALIDATION
            for fact in learn(
                self._change(item), _refusal(problem), job_id=self.chunk.job_id, now=now
            )
        ]
        if new:
            ttl = self.deps.settings.facts_ttl_hours * 3600
            FactRepository(self.session).record(new, ttl)
            self.session.commit()
            self.facts.extend(new)

    def _forget_contradicted(self, outcomes: Sequence[Outcome]) -> None:
        """Bids and adds the API just accepted: facts that said they would fail are wrong."""
        if not self.facts or self.chunk.dry_run:
            return
        bids, added = [], []
        for outcome in outcomes:
            item = self.planned.get(outcome.item_id)
            if item is None or outcome.status is not ItemStatus.SUCCEEDED:
                continue
            if item.action in (Action.SET_BID, Action.ADD) and item.desired_bid is not None:
                bids.append((item.sku_id, item.account_id, item.desired_bid))
            if item.action is Action.ADD and self.before.get(item.item_id) is None:
                added.append((item.sku_id, item.account_id))
        if bids or added:
            FactRepository(self.session).forget_contradicted(self.li, bids, added)

    # --- outcomes -----------------------------------------------------------------------------

    def record(self, outcomes: Sequence[Outcome], refused: Sequence[Refused] = ()) -> None:
        """Outcomes, with the note of an item the plan changed; the facts of `refused` first."""
        if refused and not self.chunk.dry_run:
            self._learn(refused)
        noted = [
            o if o.note is not None or o.item_id not in self.planned else self._noted(o)
            for o in outcomes
        ]
        recorded = self.items.record_outcomes(self.chunk, noted)
        self._forget_contradicted([o for o in noted if o.item_id in recorded])
        self.session.commit()
        for outcome in noted:
            if outcome.item_id in recorded:
                metrics.sku_outcome(outcome.status, outcome.error_kind, dry_run=self.chunk.dry_run)

    def _noted(self, outcome: Outcome) -> Outcome:
        note = self.planned[outcome.item_id].note
        return outcome if note is None else replace(outcome, note=note)

    def fail_pending(self, kind: ErrorKind, message: str, code: str | None = None) -> None:
        """Every SKU of the chunk still without an outcome fails the same way."""
        pending = self.items.pending(self.chunk)
        self.record(
            [failed(i.item_id, self.before.get(i.item_id), kind, message, code) for i in pending]
        )

    # --- the API ------------------------------------------------------------------------------

    def stop_if_stopping(self) -> None:
        """Before every call: a worker shutting down hands its chunk back instead of sending."""
        if self.deps.stopping is not None and self.deps.stopping():
            raise Stopping

    def checkpoint(self) -> None:
        """Before every call: renew the lease, and stop here if the job is being cancelled."""
        self.stop_if_stopping()
        cancel = self.chunks.heartbeat(self.chunk)
        self.session.commit()
        if cancel:
            raise Cancelled

    async def read(
        self, until: Collection[str] | None = None, *, heed_cancel: bool = True
    ) -> dict[str, Snapshot]:
        """The line item's products; a read that settles sent SKUs after a cancel goes on."""
        if heed_cancel:
            self.checkpoint()
        else:
            self.stop_if_stopping()
        products = await self.deps.client.get_products(
            self.li, priority=self.chunk.priority, until=until
        )
        return {p.sku_id: Snapshot(p.bid_override, p.status) for p in products}

    async def send(self, kind: CallKind, batch: Sequence[WantedItem]) -> WriteResult:
        self.stop_if_stopping()
        if self.chunks.heartbeat(self.chunk):  # committed with the attempt count below
            self.session.commit()
            raise Cancelled
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
