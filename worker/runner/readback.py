"""Settling what a response did not prove, by reading the line item once: a bid a 204 accepted,
a SKU an unnamed warning may concern, and, when a cancel stops the chunk, every SKU already
sent (a cancel never hides a change the API applied)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from worker.criteo.errors import PermanentError
from worker.criteo.models import Problem, WriteResult
from worker.domain.enums import Action, ErrorKind, ItemStatus
from worker.domain.money import format_bid
from worker.domain.planner import (
    CallKind,
    Outcome,
    Snapshot,
    WantedItem,
    expected_after,
    failed,
    reached,
)
from worker.runner.deps import ReadBack
from worker.runner.execution import Execution, Refused, kind_for, problem_outcome


def accept(ex: Execution, kind: CallKind, batch: list[WantedItem], result: WriteResult) -> None:
    """A write the API accepted: its SKUs succeed, but those its warnings name fail, and those
    the response does not prove wait for the read-back (`verify`)."""
    named = {p.sku_id: p for p in result.warnings if p.sku_id}
    unnamed = next((p for p in result.warnings if not p.sku_id), None)
    readback = ReadBack(ex.deps.settings.bid_readback)
    outcomes: list[Outcome] = []
    refused: list[Refused] = []
    for item in batch:
        before = ex.before.get(item.item_id)
        if item.sku_id in named:
            outcomes.append(problem_outcome(item, named[item.sku_id], before))
            refused.append((item, named[item.sku_id]))
            continue
        # A bid given while adding a product is applied (documented); one for a product
        # already there may be ignored, and only a response with a body says it was not.
        bid_write = kind is CallKind.APPEND and item.sent_bid is not None
        unproven = not result.has_body and before is not None
        if unnamed is not None or (bid_write and (readback is ReadBack.ALWAYS or unproven)):
            ex.to_verify[item.item_id] = (item, unnamed)
            continue
        after = expected_after(item, before)
        outcomes.append(
            Outcome(item.item_id, ItemStatus.SUCCEEDED, before, after, trace_id=result.trace_id)
        )
    ex.record(outcomes, refused)


def _settled(
    ex: Execution, item: WantedItem, warning: Problem | None, now: Snapshot | None
) -> tuple[Outcome, Refused | None]:
    """A SKU the response did not prove, as the line item now shows it."""
    before = ex.before.get(item.item_id)
    if reached(item, now):
        return Outcome(item.item_id, ItemStatus.SUCCEEDED, before, now), None
    if warning is not None:
        return problem_outcome(item, warning, before), (item, warning)
    shown = format_bid(now.bid) if now else "no product"
    return (
        Outcome(
            item.item_id,
            ItemStatus.FAILED,
            before=before,
            after=now,
            error_kind=ErrorKind.BID_NOT_APPLIED,
            error_message=(
                f"the API accepted bid {format_bid(item.desired_bid)} but the line item shows"
                f" {shown}"
            ),
        ),
        None,
    )


def _record_settled(
    ex: Execution,
    entries: Sequence[tuple[WantedItem, Problem | None]],
    current: dict[str, Snapshot],
    also: Sequence[Outcome] = (),
) -> None:
    outcomes, refused = list(also), []
    for item, warning in entries:
        outcome, refusal = _settled(ex, item, warning, current.get(item.sku_id))
        outcomes.append(outcome)
        if refusal is not None:
            refused.append(refusal)
    ex.to_verify.clear()
    ex.record(outcomes, refused)


async def verify(ex: Execution) -> None:
    """Settle what the responses did not prove by reading the line item once."""
    if not ex.to_verify:
        return
    current = await ex.read(until={item.sku_id for item, _ in ex.to_verify.values()})
    _record_settled(ex, list(ex.to_verify.values()), current)


async def settle_cancelled(ex: Execution) -> None:
    """The job was cancelled: SKUs already sent are read back and get what the API did (those
    awaiting a read-back as `verify` would settle them, the others succeeded if their change is
    in place); only SKUs never sent, or sent and not applied, become `cancelled`."""
    pending = ex.items.pending(ex.chunk)
    if not ex.planned and any(i.attempts for i in pending):
        ex.load_facts(pending)  # cancelled before this attempt planned: the raised bids
    sent = [_as_sent(ex, i) for i in pending if i.attempts > 0]
    unsent = [_cancelled(i) for i in pending if i.attempts == 0]
    if not sent:
        ex.record(unsent)
        return
    try:
        current = await ex.read(until={i.sku_id for i in sent}, heed_cancel=False)
    except PermanentError as error:
        message = f"could not be read back after the job was cancelled: {error}"
        ex.to_verify.clear()
        kind, code = kind_for(error), getattr(error, "code", None)
        lost = [failed(i.item_id, ex.before.get(i.item_id), kind, message, code) for i in sent]
        ex.record([*lost, *unsent])
        return
    awaiting = [ex.to_verify[i.item_id] for i in sent if i.item_id in ex.to_verify]
    others = [i for i in sent if i.item_id not in ex.to_verify]
    done = [
        Outcome(i.item_id, ItemStatus.SUCCEEDED, ex.before.get(i.item_id), current.get(i.sku_id))
        if reached(i, current.get(i.sku_id))
        else _cancelled(i)
        for i in others
    ]
    _record_settled(ex, awaiting, current, also=[*done, *unsent])


def _as_sent(ex: Execution, item: WantedItem) -> WantedItem:
    """The item as a call carried it: with its bid raised to a known minimum if it was."""
    if item.item_id in ex.to_verify:
        return ex.to_verify[item.item_id][0]
    if item.item_id in ex.planned:
        return ex.planned[item.item_id]
    prediction = ex.predict(item) if item.action in (Action.SET_BID, Action.ADD) else None
    if prediction is not None and prediction.clamp_to is not None:
        return replace(item, desired_bid=prediction.clamp_to, note=prediction.reason)
    return item


def _cancelled(item: WantedItem) -> Outcome:
    return Outcome(item.item_id, ItemStatus.CANCELLED, None, None)
