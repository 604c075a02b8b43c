"""Token endpoint and the three 401 codes."""

from __future__ import annotations

import time

from tests.integration.simulator.api import Api, auction
from worker.simulator.control import SimulatorControl
from worker.simulator.scenario import DEFAULT_CLIENT_ID, READONLY_CLIENT_ID, Scenario


def test_token_is_issued_for_a_form_encoded_secret_with_special_characters(api: Api) -> None:
    answer = api.get_token()
    assert answer.status == 200
    assert set(answer.body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert answer.body["token_type"] == "Bearer"
    assert answer.body["expires_in"] == 900
    assert answer.body["refresh_token"] is None
    assert answer.body["access_token"]


def test_wrong_secret_is_401_in_the_envelope(api: Api) -> None:
    answer = api.get_token(DEFAULT_CLIENT_ID, "demo secret/with=chars")  # '+' decoded as space
    assert answer.status == 401
    assert answer.body["warnings"] == []
    (error,) = answer.errors
    assert error["type"] == "authentication"
    assert error["code"] == "invalid-client-credentials"
    assert error["status"] == 401
    assert set(error) == {
        "traceId",
        "type",
        "code",
        "instance",
        "title",
        "detail",
        "source",
        "status",
    }


def test_unknown_client_and_wrong_grant_type_are_refused(api: Api) -> None:
    assert api.get_token("nobody", "x").status == 401
    answer = api.request(
        "POST",
        "/oauth2/token",
        form={"client_id": DEFAULT_CLIENT_ID, "client_secret": "x", "grant_type": "password"},
    )
    assert answer.status == 400
    assert answer.errors[0]["code"] == "unsupported-grant-type"


def test_expires_in_is_configurable(api: Api, sim_control: SimulatorControl) -> None:
    sim_control.configure(token_ttl_seconds=60)
    assert api.get_token().body["expires_in"] == 60


def test_missing_token_is_401_missing(api: Api, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    answer = api.request("GET", f"/2026-07/retail-media/line-items/{li.id}/products")
    assert answer.status == 401
    assert answer.errors[0]["code"] == "authorization-token-missing"
    assert answer.errors[0]["type"] == "authentication"


def test_unknown_token_is_401_invalid(api: Api, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    api.token = "not-a-token"
    answer = api.get(li.id)
    assert answer.status == 401
    assert answer.errors[0]["code"] == "authorization-token-invalid"


def test_expired_token_is_401_expired_and_a_new_one_works(
    api: Api, sim_control: SimulatorControl, sim_scenario: Scenario
) -> None:
    li, _ = auction(sim_scenario)
    sim_control.configure(token_ttl_seconds=1)
    api.get_token()
    assert api.get(li.id).status == 200
    time.sleep(1.05)
    answer = api.get(li.id)
    assert answer.status == 401
    assert answer.errors[0]["code"] == "authorization-token-expired"
    sim_control.configure(token_ttl_seconds=900)
    api.get_token()
    assert api.get(li.id).status == 200


def test_several_tokens_are_valid_at_once(api: Api, sim_scenario: Scenario) -> None:
    li, _ = auction(sim_scenario)
    api.get_token()
    first = api.token
    api.get_token()
    assert api.get(li.id).status == 200
    api.token = first
    assert api.get(li.id).status == 200


def test_token_calls_are_logged_with_their_client(api: Api, sim_control: SimulatorControl) -> None:
    api.get_token(READONLY_CLIENT_ID, "wrong")
    api.get_token()
    log = sim_control.requests()
    assert log["by_endpoint"]["token"] == {"401": 1, "200": 1}
    assert [e["client_id"] for e in log["log"]] == [None, DEFAULT_CLIENT_ID]
