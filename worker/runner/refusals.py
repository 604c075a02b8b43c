"""A kind's SKUs in as few requests as the API's limits allow, and what a refused batch costs:
a batch too large is cut to what the API takes, SKUs a 400 names fail at once, and those it
does not name are found by group testing (`worker.domain.isolation`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from worker.criteo.errors import RequestTooLarge, ValidationRejected, problem_kind
from worker.criteo.learned import WriteLimits
from worker.criteo.models import Problem, entry_bytes
from worker.domain.enums import ErrorKind
from worker.domain.isolation import Isolation, Refusal
from worker.domain.planner import CallKind, Outcome, WantedItem, failed
from worker.runner.execution import Execution, Refused, problem_outcome
from worker.runner.readback import accept


def _weigher(kind: CallKind) -> Callable[[WantedItem], int]:
    """An item's share of a request body of this kind, in bytes (bids go only on an append)."""
    if kind is CallKind.APPEND:
        return lambda i: entry_bytes(i.sku_id, i.sent_bid)
    return lambda i: entry_bytes(i.sku_id)


async def call(ex: Execution, kind: CallKind, items: list[WantedItem]) -> None:
    """The items of one kind in as few requests as the API's limits allow, and whatever
    finding its refused SKUs costs."""
    limits = await ex.deps.client.write_limits(kind)
    batches = deque(limits.split(items, _weigher(kind)))
    while batches:
        batch = batches.popleft()
        try:
            result = await ex.send(kind, batch)
        except RequestTooLarge as too_large:
            batches.extendleft(reversed(_cut(ex, kind, batch, too_large)))
            continue
        except ValidationRejected as rejected:
            batches.extend(await _isolate(ex, kind, batch, rejected))
            continue
        accept(ex, kind, batch, result)


def _cut(
    ex: Execution, kind: CallKind, batch: list[WantedItem], too_large: RequestTooLarge
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
    before = ex.before.get(item.item_id)
    ex.record([failed(item.item_id, before, ErrorKind.API_ERROR, str(too_large), too_large.code)])
    return []


async def _isolate(
    ex: Execution, kind: CallKind, batch: list[WantedItem], rejected: ValidationRejected
) -> list[list[WantedItem]]:
    """Settle a refused batch: named SKUs fail, the rest is found by group testing. Returns
    what must go again from the start (the API's limits changed under us meanwhile)."""
    named = _named(ex, batch, rejected.problems)
    seen = {p.code: p for p in rejected.problems if not p.sku_id}
    tally = rejected.tally()
    isolation = Isolation(
        [i for i in batch if i not in named], tally, sure=bool(tally.counts) or not named
    )
    while (test := isolation.next_test()) is not None:
        try:
            result = await ex.send(kind, test)
        except RequestTooLarge as too_large:
            limits = too_large.limits or WriteLimits()
            return limits.split(isolation.unsettled(), _weigher(kind))
        except ValidationRejected as again:
            found = _named(ex, test, again.problems)
            seen.update((p.code, p) for p in again.problems if not p.sku_id)
            isolation.failed(again.tally(), {i: p.code for i, p in found.items()})
        else:
            isolation.passed()
            accept(ex, kind, test, result)
        _record_refusals(ex, isolation.refusals(), seen)
    _record_refusals(ex, isolation.refusals(), seen)
    return []


def _named(
    ex: Execution, batch: Sequence[WantedItem], problems: Sequence[Problem]
) -> dict[WantedItem, Problem]:
    """The batch's SKUs its problems name, each with its first problem; recorded failed."""
    by_sku = {i.sku_id: i for i in batch}
    named: dict[WantedItem, Problem] = {}
    for problem in problems:
        item = by_sku.get(problem.sku_id or "")
        if item is not None and item not in named:
            named[item] = problem
    ex.record(
        [problem_outcome(i, p, ex.before.get(i.item_id)) for i, p in named.items()],
        refused=list(named.items()),
    )
    return named


def _record_refusals(
    ex: Execution, refusals: Sequence[Refusal[WantedItem]], seen: dict[str, Problem]
) -> None:
    """SKUs found refused by group testing, failed with the problem of their code."""
    outcomes: list[Outcome] = []
    refused: list[Refused] = []
    for refusal in refusals:
        item = refusal.item
        before = ex.before.get(item.item_id)
        problem = next((seen[c] for c in refusal.codes if c in seen), None)
        refused.append((item, problem))
        if problem is None:
            message = "refused by the API without a reason"
            outcomes.append(failed(item.item_id, before, ErrorKind.VALIDATION, message))
            continue
        outcomes.append(
            failed(
                item.item_id,
                before,
                problem_kind(problem),
                f"{problem.title or problem.code} (the API named no SKU; found by splitting"
                " the batch)",
                problem.code or None,
                problem.trace_id,
            )
        )
    ex.record(outcomes, refused)
