"""The request log: each request and its outcome, counts per endpoint and status, per-SKU writes."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class Entry:
    """One request; slotted, so a log of 200,000 entries stays small."""

    seq: int
    t: float
    endpoint: str
    method: str
    path: str
    status: int | str | None = None
    fault: str | None = None
    client_id: str | None = None
    items: int = 0


class RequestLog:
    """Append-only; reading from `since` costs O(entries returned), not O(log size)."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.by_endpoint: dict[str, Counter[str]] = {}
        self.write_counts: Counter[tuple[int, str]] = Counter()

    def start(self, endpoint: str, method: str, path: str) -> Entry:
        """Log a request as it arrives; `finish` fills in its outcome."""
        entry = Entry(len(self.entries) + 1, time.time(), endpoint, method, path)
        self.entries.append(entry)
        return entry

    def count_writes(self, entry: Entry, line_item_id: int, skus: list[str]) -> None:
        """Count a write request for each SKU it carries, whatever its answer will be."""
        entry.items = len(skus)
        for sku in set(skus):
            self.write_counts[(line_item_id, sku)] += 1

    def finish(self, entry: Entry, status: int | str, fault: str | None = None) -> None:
        entry.status = status
        entry.fault = fault
        self.by_endpoint.setdefault(entry.endpoint, Counter())[str(status)] += 1

    def summary(self, since: int, limit: int, with_writes: bool) -> dict[str, Any]:
        by_status: Counter[str] = Counter()
        for counts in self.by_endpoint.values():
            by_status.update(counts)
        out: dict[str, Any] = {
            "total": len(self.entries),
            "by_endpoint": {ep: dict(counts) for ep, counts in self.by_endpoint.items()},
            "by_status": dict(by_status),
            "log": [asdict(e) for e in self.entries[since : since + limit]],
        }
        if with_writes:
            out["write_counts"] = [
                {"line_item_id": li, "sku": sku, "count": n}
                for (li, sku), n in self.write_counts.items()
            ]
        return out
