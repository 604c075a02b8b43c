"""A bare HTTP client of the simulated Criteo API for the simulator's own tests (stdlib only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from worker.simulator.scenario import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    LineItemSpec,
    Scenario,
)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.body["errors"])

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return list(self.body["warnings"])


class Api:
    def __init__(self, base_url: str, version: str = "2026-07", timeout: float = 5.0) -> None:
        self.base_url = base_url
        self.version = version
        self.timeout = timeout
        self.token: str | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        all_headers = dict(headers or {})
        data = raw
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=all_headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return _answer(exc.code, dict(exc.headers), exc.read())

    def get_token(
        self, client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET
    ) -> Answer:
        answer = self.request(
            "POST",
            "/oauth2/token",
            form={
                "client_id": client_id,
                "client_secret": client_secret,
                "grant_type": "client_credentials",
            },
        )
        if answer.status == 200:
            self.token = answer.body["access_token"]
        return answer

    def _auth(self) -> dict[str, str]:
        if self.token is None:
            self.get_token()
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, line_item_id: int, query: str = "", version: str | None = None) -> Answer:
        path = f"/{version or self.version}/retail-media/line-items/{line_item_id}/products"
        return self.request("GET", path + (f"?{query}" if query else ""), headers=self._auth())

    def write(
        self,
        action: str,
        line_item_id: int,
        items: list[dict[str, Any]],
        version: str | None = None,
    ) -> Answer:
        path = (
            f"/{version or self.version}/retail-media/line-items/{line_item_id}/products/{action}"
        )
        return self.request("POST", path, body={"data": items}, headers=self._auth())


def _answer(status: int, headers: dict[str, str], content: bytes) -> Answer:
    lowered = {k.lower(): v for k, v in headers.items()}
    if not content:
        return Answer(status, lowered, None)
    if lowered.get("content-type", "").startswith("application/json"):
        return Answer(status, lowered, json.loads(content))
    return Answer(status, lowered, content.decode())


def item(sku: str, bid: float | str | None = None, **attributes: Any) -> dict[str, Any]:
    """A request item; `bid` given (even None via attributes) puts a bidOverride attribute."""
    attrs = dict(attributes)
    if bid is not None:
        attrs["bidOverride"] = bid
    out: dict[str, Any] = {"id": sku, "type": "RetailMediaPromotedProduct"}
    if attrs:
        out["attributes"] = attrs
    return out


def auction(scenario: Scenario, index: int = 0) -> tuple[LineItemSpec, dict[str, Decimal]]:
    """The index-th auction line item and its account's catalog (SKU → minBid)."""
    return _pick(scenario, "auction", index)


def preferred(scenario: Scenario) -> tuple[LineItemSpec, dict[str, Decimal]]:
    return _pick(scenario, "preferred_deals", 0)


def _pick(scenario: Scenario, kind: str, index: int) -> tuple[LineItemSpec, dict[str, Decimal]]:
    found = [
        (li, {e.sku: e.minBid for e in account.catalog})
        for account in scenario.accounts
        for li in account.line_items
        if li.kind == kind
    ]
    return found[index]


def unpromoted(line_item: LineItemSpec, catalog: dict[str, Decimal]) -> list[str]:
    """Catalog SKUs the line item does not promote yet."""
    promoted = {p.sku for p in line_item.products}
    return [sku for sku in catalog if sku not in promoted]
