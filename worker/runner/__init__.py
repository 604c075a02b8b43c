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
  is confirmed by a read-back, per the settings; the read-back stops at the last page it needs;
- what a refusal taught (a SKU's minimum bid, a catalog that lacks it, a line item without bid
  overrides) is kept as a fact (`worker.domain.facts`), committed before the refusal's outcome,
  and the next plan fails or raises such a change without a call.

A dry-run job stops after the plan: the read is made, no write is, and each SKU a call would
have carried is recorded `succeeded` with the state the call would have left (its "after").

A cancel stops the chunk between two calls; SKUs already sent are read back and recorded with
what the API did, and only those never sent become `cancelled`.

Modules: `deps` (what a run is given), `execution` (one attempt's state and its ways to the API,
the items and the facts), `refusals` (batches, and what a refused batch costs), `readback`
(settling what a response did not prove, and a cancel), `chunk` (claim to finish).
"""

from worker.runner.chunk import run_chunk
from worker.runner.deps import ApiClient, ChunkResult, ReadBack, RunnerDeps

__all__ = ["ApiClient", "ChunkResult", "ReadBack", "RunnerDeps", "run_chunk"]
