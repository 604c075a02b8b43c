"""Contract: Criteo's official SDK, as the client, parses every answer through its own models.

If the SDK cannot parse a response, the simulator is wrong.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from criteo_api_retailmedia_v2027_01.api.campaign_api import CampaignApi
from criteo_api_retailmedia_v2027_01.api_client_builder import ApiClientBuilder
from criteo_api_retailmedia_v2027_01.exceptions import ApiException
from criteo_api_retailmedia_v2027_01.model.product_resource_outcome import (
    ProductResourceOutcome,
)
from criteo_api_retailmedia_v2027_01.model.promoted_product import PromotedProduct
from criteo_api_retailmedia_v2027_01.model.promoted_product_resource import (
    PromotedProductResource,
)
from criteo_api_retailmedia_v2027_01.model.promoted_product_resource_collection_input import (
    PromotedProductResourceCollectionInput,
)
from criteo_api_retailmedia_v2027_01.model.promoted_product_resource_collection_outcome import (
    PromotedProductResourceCollectionOutcome,
)

from tests.integration.simulator.api import auction, unpromoted
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Scenario
from worker.simulator.server import RunningSimulator


@pytest.fixture
def sdk(simulator: RunningSimulator) -> Any:
    client = ApiClientBuilder.WithClientCredentials(
        DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, host=simulator.url
    )
    return CampaignApi(client)


def _body(*products: tuple[str, float | None]) -> Any:
    data = []
    for sku, bid in products:
        attributes = PromotedProduct(bid_override=bid) if bid is not None else None
        kwargs = {"attributes": attributes} if attributes is not None else {}
        data.append(PromotedProductResource(id=sku, type="RetailMediaPromotedProduct", **kwargs))
    return PromotedProductResourceCollectionInput(data=data)


def test_fetch_through_the_sdk_models(sdk: Any, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    page = sdk.fetch_promoted_products(str(li.id), fields="status,bidOverride", limit=4, offset=2)
    assert isinstance(page, PromotedProductResourceCollectionOutcome)
    assert page.meta.count == 10
    assert page.meta.response_count == 4
    assert page.meta.offset == 2
    first = page.data[0]
    expected = li.products[2]
    assert first.id == expected.sku
    assert first.attributes.status.value == expected.status
    bid = first.attributes.bid_override
    assert bid == (None if expected.bidOverride is None else float(expected.bidOverride))


def test_append_delete_pause_unpause_through_the_sdk(
    sdk: Any, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, catalog = auction(sim_scenario)
    new = unpromoted(li, catalog)[0]
    bid = float(catalog[new] + Decimal("0.25"))
    outcome = sdk.append_promoted_products(
        str(li.id), promoted_product_resource_collection_input=_body((new, bid))
    )
    assert isinstance(outcome, ProductResourceOutcome)
    assert outcome.errors == []
    assert outcome.warnings == []
    assert sim_control.products(li.id)[new] == {"bidOverride": bid, "status": "active"}

    sdk.pause_promoted_products(
        str(li.id), promoted_product_resource_collection_input=_body((new, None))
    )
    assert sim_control.products(li.id)[new]["status"] == "paused"
    sdk.unpause_promoted_products(
        str(li.id), promoted_product_resource_collection_input=_body((new, None))
    )
    assert sim_control.products(li.id)[new]["status"] == "active"
    sdk.delete_promoted_products(
        str(li.id), promoted_product_resource_collection_input=_body((new, None))
    )
    assert new not in sim_control.products(li.id)
    assert sim_control.requests()["by_endpoint"]["token"]["200"] >= 1


def test_warnings_parse_as_sdk_problems(
    sdk: Any, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    sim_control.configure(validation_mode="c")
    li, _ = auction(sim_scenario)
    outcome = sdk.append_promoted_products(
        str(li.id), promoted_product_resource_collection_input=_body(("ghost-9", None))
    )
    (warning,) = outcome.warnings
    assert warning.code == "product-not-in-catalog"
    assert warning.type == "validation"
    assert warning.source == {"id": "data/0/id"}
    assert warning.status == 400


def test_errors_reach_the_sdk_as_api_exceptions(sdk: Any, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    with pytest.raises(ApiException) as caught:
        sdk.append_promoted_products(
            str(li.id), promoted_product_resource_collection_input=_body(("ghost-9", None))
        )
    assert caught.value.status == 400
    assert "product-not-in-catalog" in caught.value.body
