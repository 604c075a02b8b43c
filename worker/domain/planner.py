"""From a line item's current products and a chunk's desired changes to the fewest API calls.

Pure: the runner feeds it what it read and sends what it returns. Targets are absolute (a bid,
a status, present or absent), so a plan replayed after a crash is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from worker.domain.enums import Action, ErrorKind, ItemStatus, ProductStatus
from worker.domain.facts import Prediction
from worker.domain.guardrails import Guardrails


class CallKind(StrEnum):
    """The write endpoints, in the order a chunk calls them."""

    APPEND = "append"
    UNPAUSE = "unpause"
    PAUSE = "pause"
    DELETE = "delete"


CALL_ORDER = (CallKind.APPEND, CallKind.UNPAUSE, CallKind.PAUSE, CallKind.DELETE)
CALL_FOR_ACTION = {
    Action.SET_BID: CallKind.APPEND,
    Action.CLEAR_BID: CallKind.APPEND,
    Action.ADD: CallKind.APPEND,
    Action.UNPAUSE: CallKind.UNPAUSE,
    Action.PAUSE: CallKind.PAUSE,
    Action.REMOVE: CallKind.DELETE,
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A product as the API showed it; `None` in its place means not on the line item."""

    bid: Decimal | None
    status: str


UNKNOWN = Snapshot(bid=None, status=ProductStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class WantedItem:
    item_id: int
    sku_id: str
    action: Action
    desired_bid: Decimal | None
    attempts: int = 0
    account_id: str | None = None
    note: str | None = None  # what promobulk changed in the request, e.g. a bid raised to its min

    @property
    def sent_bid(self) -> Decimal | None:
        """The bidOverride its write carries: 0 for clear_bid, the API's word for none."""
        return Decimal(0) if self.action is Action.CLEAR_BID else self.desired_bid


@dataclass(frozen=True, slots=True)
class Outcome:
    item_id: int
    status: ItemStatus
    before: Snapshot | None
    after: Snapshot | None
    error_kind: ErrorKind | None = None
    error_code: str | None = None
    error_message: str | None = None
    trace_id: str | None = None
    note: str | None = None


def failed(
    item_id: int,
    before: Snapshot | None,
    kind: ErrorKind,
    message: str,
    code: str | None = None,
    trace_id: str | None = None,
) -> Outcome:
    """A SKU that failed and was left as it was: the one way a failure is recorded."""
    return Outcome(item_id, ItemStatus.FAILED, before, before, kind, code, message, trace_id)


Predict = Callable[[WantedItem], Prediction | None]


@dataclass
class Plan:
    calls: dict[CallKind, list[WantedItem]] = field(default_factory=dict)
    decided: list[Outcome] = field(default_factory=list)
    before: dict[int, Snapshot | None] = field(default_factory=dict)

    def ordered_calls(self) -> list[tuple[CallKind, list[WantedItem]]]:
        return [(kind, self.calls[kind]) for kind in CALL_ORDER if self.calls.get(kind)]


def same_bid(a: Decimal | None, b: Decimal | None) -> bool:
    return a == b if a is not None and b is not None else a is None and b is None


def expected_after(item: WantedItem, before: Snapshot | None) -> Snapshot | None:
    """The product's state once the item's call has been applied."""
    if item.action is Action.REMOVE:
        return None
    if before is None or before is UNKNOWN:
        base = Snapshot(bid=None, status=ProductStatus.ACTIVE if before is None else before.status)
    else:
        base = before
    if item.action in (Action.SET_BID, Action.ADD):
        bid = item.desired_bid if item.desired_bid is not None else base.bid
        return Snapshot(bid=bid, status=base.status)
    if item.action is Action.CLEAR_BID:
        return Snapshot(bid=None, status=base.status)
    if item.action is Action.PAUSE:
        return Snapshot(bid=base.bid, status=ProductStatus.PAUSED)
    return Snapshot(bid=base.bid, status=ProductStatus.ACTIVE)


def reached(item: WantedItem, current: Snapshot | None) -> bool:
    """Whether the product already is what the item asks for."""
    if item.action is Action.REMOVE:
        return current is None
    if current is None:
        return False
    if item.action in (Action.SET_BID, Action.ADD):
        return item.desired_bid is None or same_bid(current.bid, item.desired_bid)
    if item.action is Action.CLEAR_BID:
        return current.bid is None
    if item.action is Action.PAUSE:
        return current.status == ProductStatus.PAUSED
    return current.status == ProductStatus.ACTIVE


def _decide(item: WantedItem, before: Snapshot | None) -> Outcome | None:
    """An outcome known without a call, or None when the item needs its call.

    An item an earlier, interrupted attempt already sent and that is now in place was changed
    by us: it succeeded (its true before-values were stored when it was sent). An item already
    in its desired state is `unchanged`, a `remove` of a SKU that is not there included.
    """
    if reached(item, before):
        status = ItemStatus.SUCCEEDED if item.attempts else ItemStatus.UNCHANGED
        return Outcome(item.item_id, status, before=before, after=before, note=item.note)
    if before is None and item.action is not Action.ADD:
        return failed(
            item.item_id,
            None,
            ErrorKind.NOT_ON_LINE_ITEM,
            f"SKU {item.sku_id!r} is not on the line item ({item.action} needs it)",
        )
    return None


def _guarded(item: WantedItem, before: Snapshot | None, guardrails: Guardrails) -> Outcome | None:
    """A bid the job's guardrails forbid fails here, before any call carries it."""
    if item.desired_bid is None or item.action not in (Action.SET_BID, Action.ADD):
        return None
    breach = guardrails.breach(item.desired_bid, None if before is None else before.bid)
    return None if breach is None else failed(item.item_id, before, ErrorKind.GUARDRAIL, breach)


def _foreseen(
    item: WantedItem, before: Snapshot | None, predict: Predict, known: bool
) -> tuple[WantedItem, Outcome | None]:
    """What the API's earlier refusals say of the item: it fails without a call (as the API's
    validation failure it would get), or its bid is raised to a known minimum and it is decided
    again (the minimum may already be in place)."""
    prediction = predict(item)
    if prediction is None:
        return item, None
    if prediction.clamp_to is None:
        message = f"predicted, not sent: {prediction.reason}"
        code = prediction.fact.error_code
        return item, failed(item.item_id, before, ErrorKind.VALIDATION, message, code)
    raised = replace(item, desired_bid=prediction.clamp_to, note=prediction.reason)
    return raised, _decide(raised, before) if known else None


def plan_chunk(
    items: Iterable[WantedItem],
    current: Mapping[str, Snapshot] | None,
    guardrails: Guardrails | None = None,
    predict: Predict | None = None,
) -> Plan:
    """`current` is None when the job skips the read-before: every item then gets its call (and
    only the guardrails' maximum bid can be checked, the current bid being unknown).

    Each item is decided by the first that applies: its product's state (already there, or
    not on the line item), the job's guardrails, the API's earlier refusals (`predict`; a bid
    raised to a known minimum is decided and guarded again)."""
    plan = Plan()
    for wanted in items:
        item = wanted
        before: Snapshot | None = UNKNOWN if current is None else current.get(item.sku_id)
        plan.before[item.item_id] = before
        decided = None if current is None else _decide(item, before)
        if decided is None and guardrails is not None:
            decided = _guarded(item, before, guardrails)
        if decided is None and predict is not None:
            item, decided = _foreseen(item, before, predict, current is not None)
            if decided is None and guardrails is not None and item is not wanted:
                decided = _guarded(item, before, guardrails)
        if decided is not None:
            plan.decided.append(decided)
        else:
            plan.calls.setdefault(CALL_FOR_ACTION[item.action], []).append(item)
    return plan
