"""The peers, run against the same simulator in the same run, on a sample of line items:

- *docs samples*: what the API documentation's samples do, one request per SKU, sequential,
  a plain HTTP client (a new connection per request, as `requests.post` without a session), a
  token fetched once, no read, no retries;
- *official-SDK loop*: Criteo's SDK (`criteo-api-retailmedia-sdk`), one call per line item and
  kind of change (the SDK has one endpoint per kind: append, pause, unpause, delete), sequential,
  no read, no retries.

A failed call (any HTTP error, 429 included) leaves its SKUs undone, as a loop without retries
does. The simulator's log, not the peer's own count, is the judge of the calls made.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from worker.bench.scenarios import Row
from worker.criteo.models import PRODUCT_TYPE
from worker.simulator.scenario import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

ENDPOINT = {
    "set_bid": "append",
    "add": "append",
    "pause": "pause",
    "unpause": "unpause",
    "remove": "delete",
}


@dataclass
class PeerRun:
    wall_seconds: float
    failed_calls: int
    failed_skus: int


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)


def _token(base_url: str) -> str:
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310
        base_url + "/oauth2/token",
        data=form,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return str(json.loads(response.read())["access_token"])


def _entry(row: Row) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": row.sku_id, "type": PRODUCT_TYPE}
    if ENDPOINT[row.action] == "append" and row.bid is not None:
        entry["attributes"] = {"bidOverride": float(row.bid)}
    return entry


def docs_samples(base_url: str, version: str, rows: Sequence[Row]) -> PeerRun:
    """One POST per SKU, in file order."""
    started = time.monotonic()
    headers = {
        "Authorization": f"Bearer {_token(base_url)}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    failed = 0
    for row in rows:
        url = (
            f"{base_url}/{version}/retail-media/line-items/{row.line_item_id}"
            f"/products/{ENDPOINT[row.action]}"
        )
        status = _post(url, json.dumps({"data": [_entry(row)]}).encode(), headers)
        if status >= 400:
            failed += 1
    return PeerRun(time.monotonic() - started, failed, failed)


def sdk_loop(base_url: str, rows: Sequence[Row]) -> PeerRun:
    """The official SDK: per line item, one call per kind of change, sequential, no retries."""
    from criteo_api_retailmedia_v2027_01.api.campaign_api import CampaignApi
    from criteo_api_retailmedia_v2027_01.api_client_builder import ApiClientBuilder
    from criteo_api_retailmedia_v2027_01.exceptions import ApiException
    from criteo_api_retailmedia_v2027_01.model.promoted_product import PromotedProduct
    from criteo_api_retailmedia_v2027_01.model.promoted_product_resource import (
        PromotedProductResource,
    )
    from criteo_api_retailmedia_v2027_01.model.promoted_product_resource_collection_input import (
        PromotedProductResourceCollectionInput,
    )

    started = time.monotonic()
    api = CampaignApi(
        ApiClientBuilder.WithClientCredentials(
            DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, host=base_url
        )
    )
    calls = {
        "append": api.append_promoted_products,
        "pause": api.pause_promoted_products,
        "unpause": api.unpause_promoted_products,
        "delete": api.delete_promoted_products,
    }
    grouped: dict[int, dict[str, list[Row]]] = {}
    for row in rows:
        grouped.setdefault(row.line_item_id, {}).setdefault(ENDPOINT[row.action], []).append(row)
    failed_calls = failed_skus = 0
    for line_item_id, kinds in grouped.items():
        for kind in ("append", "unpause", "pause", "delete"):
            batch = kinds.get(kind)
            if not batch:
                continue
            data = []
            for row in batch:
                if kind == "append" and row.bid is not None:
                    attributes = PromotedProduct(bid_override=float(row.bid))
                    data.append(
                        PromotedProductResource(
                            id=row.sku_id, type=PRODUCT_TYPE, attributes=attributes
                        )
                    )
                else:
                    data.append(PromotedProductResource(id=row.sku_id, type=PRODUCT_TYPE))
            try:
                calls[kind](
                    str(line_item_id),
                    promoted_product_resource_collection_input=(
                        PromotedProductResourceCollectionInput(data=data)
                    ),
                )
            except ApiException:
                failed_calls += 1
                failed_skus += len(batch)
    return PeerRun(time.monotonic() - started, failed_calls, failed_skus)
