"""A small synchronous client of the simulator's `/_sim/` inspection surface (stdlib only).

Tests and benchmarks check final state through it, never through the product's own database.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from worker.simulator.scenario import Scenario


class SimulatorControl:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the simulator's, http only
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as refused:
            refused.close()  # raised as it is, without its connection left open
            raise

    def state(self, line_item_id: int | None = None) -> dict[str, Any]:
        """The whole state in scenario format (only one line item when given)."""
        query = "" if line_item_id is None else f"?line_item={line_item_id}"
        result: dict[str, Any] = self._call("GET", "/_sim/state" + query)
        return result

    def requests(
        self, since: int = 0, limit: int = 1000, write_counts: bool = True
    ) -> dict[str, Any]:
        """Totals, counts per endpoint and status, write counts, and log entries after `since`."""
        flag = "1" if write_counts else "0"
        result: dict[str, Any] = self._call(
            "GET", f"/_sim/requests?since={since}&limit={limit}&write_counts={flag}"
        )
        return result

    def reset(self, *, config: bool = False) -> None:
        """Back to the loaded scenario with an empty log; `config=True` also restores the config."""
        self._call("POST", "/_sim/reset", {"config": config})

    def load(self, scenario: Scenario) -> None:
        self._call("POST", "/_sim/scenario", scenario.model_dump(mode="json"))

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Partial config update (see docs/simulator.md); returns the whole new config."""
        result: dict[str, Any] = self._call("POST", "/_sim/config", changes)
        return result

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_sim/config")
        return result

    def products(self, line_item_id: int) -> dict[str, dict[str, Any]]:
        """SKU → {"bidOverride", "status"} of one line item; empty if it does not exist."""
        return {
            p["sku"]: {"bidOverride": p["bidOverride"], "status": p["status"]}
            for account in self.state(line_item_id)["accounts"]
            for li in account["line_items"]
            for p in li["products"]
        }

    def write_counts(self) -> dict[tuple[int, str], int]:
        """(line item, SKU) → number of write requests received that carried that SKU."""
        return {
            (row["line_item_id"], row["sku"]): row["count"]
            for row in self.requests(limit=0)["write_counts"]
        }
