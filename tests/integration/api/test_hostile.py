"""Input an attacker or a careless pipeline sends: every answer a clear 400 (or 409) naming the
row and field, nothing stored, and no stored row able to break a listing (issue 13)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from tests.integration.api.conftest import Api, table_counts
from tests.integration.api.test_submit import HEADER, LINE_ITEM, items

BIG = "x" * 131_073
NUL = "a\x00b"


def refused(api: Api, body: Any = None, **call: Any) -> dict[str, Any]:
    """A request that must be refused with a 400 and store nothing; its problem document."""
    before = table_counts(api.engine)
    reply = api.call("POST", "/v1/jobs", body, **call)
    assert reply.status == 400, (reply.status, reply.body[:300])
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert table_counts(api.engine) == before
    return dict(reply.json)


def named(problem: dict[str, Any]) -> set[tuple[int, str]]:
    return {(e["row"], e["field"]) for e in problem.get("errors") or []} | (
        {(0, problem["field"])} if problem.get("field") else set()
    )


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00", "2030-01-01T00:00:00Z"]
)
def test_a_start_time_out_of_its_window_is_refused_before_anything_is_stored(
    api: Api, when: str
) -> None:
    problem = refused(api, {"items": items(1), "not_before": when})
    assert problem["field"] == "not_before"
    assert api.call("GET", "/v1/jobs").status == 200


def test_one_unreadable_stored_time_breaks_no_listing(api: Api) -> None:
    """Rows stored before the checks (or by hand) with times Python cannot hold."""
    jobs = [api.client.submit(items(1))["id"] for _ in range(2)]
    with api.engine.begin() as conn:
        times = ["0001-12-31 23:00:00+00 BC", "20000-01-01 00:00:00+00"]
        for job, when in zip(jobs, times, strict=True):
            conn.execute(
                sa.text("UPDATE jobs SET not_before = CAST(:w AS timestamptz) WHERE id = :j"),
                {"w": when, "j": job},
            )
    listed = api.call("GET", f"/v1/jobs?submitted_by={api.submitter}")
    assert listed.status == 200
    assert {j["id"]: j["not_before"] for j in listed.json["jobs"]} == {jobs[0]: None, jobs[1]: None}
    assert api.call("GET", f"/v1/jobs/{jobs[0]}").status == 200


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"sku_id": NUL}, "sku_id"),
        ({"sku_id": "a\ud800"}, "sku_id"),
        ({"sku_id": BIG}, "sku_id"),
        ({"account_id": NUL}, "account_id"),
        ({"account_id": BIG}, "account_id"),
        ({"account_id": {"nested": 1}}, "account_id"),
        ({"account_id": "\u0664\u0662"}, "account_id"),
        ({"bid_override": "1e2"}, "bid_override"),
        ({"bid_override": "-0"}, "bid_override"),
        ({"line_item_id": "\u0661\u0662"}, "line_item_id"),
    ],
)
def test_bad_values_in_an_item_are_named_by_row_and_field(
    api: Api, item: dict[str, Any], field: str
) -> None:
    body = {"items": [*items(1), {**items(2)[1], **item}]}
    raw = json.dumps(body).encode("utf-8", "surrogatepass")
    problem = refused(api, raw=raw)
    assert named(problem) == {(2, field)}
    reason = problem["errors"][0]["reason"]
    # The value is shown escaped and shortened.
    assert "\x00" not in reason
    assert BIG not in reason


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"idempotency_key": NUL}, "idempotency_key"),
        ({"idempotency_key": "k\ud800"}, "idempotency_key"),
        ({"idempotency_key": BIG}, "idempotency_key"),
        ({"callback_url": "https://x.example/" + NUL}, "callback_url"),
        ({"callback_url": "https://x.example/" + BIG}, "callback_url"),
        ({"options": {"max_bid": "1e999"}}, "options.max_bid"),
        ({"options": {"max_change_ratio": "NaN"}}, "options.max_change_ratio"),
    ],
)
def test_bad_job_fields_are_named(api: Api, fields: dict[str, Any], field: str) -> None:
    raw = json.dumps({"items": items(1), **fields}).encode("utf-8", "surrogatepass")
    assert refused(api, raw=raw)["field"] == field


def test_bad_list_filters_are_a_400(api: Api) -> None:
    reply = api.call("GET", f"/v1/jobs?submitted_by={quote(NUL)}")
    assert reply.status == 400
    assert "submitted_by" in reply.json["detail"]
    assert api.call("GET", f"/v1/jobs?submitted_by={'x' * 201}").status == 400
    # Bytes that are no UTF-8 arrive replaced, as text that matches no submitter.
    assert api.call("GET", "/v1/jobs?submitted_by=%ED%A0%80").json["jobs"] == []


def test_bad_item_filters_are_a_400(api: Api) -> None:
    job = api.client.submit(items(1))["id"]
    for sku in (NUL, "x" * 501):
        reply = api.call("GET", f"/v1/jobs/{job}/items?sku_id={quote(sku)}")
        assert reply.status == 400
        assert "sku_id" in reply.json["detail"]


def test_a_request_line_past_the_server_limit_is_a_400_not_a_500(api: Api) -> None:
    """aiohttp refuses a request line over 8 KiB itself, before any handler runs."""
    assert api.call("GET", f"/v1/jobs?submitted_by={BIG}").status == 400


def csv_refused(api: Api, text: str | bytes) -> dict[str, Any]:
    raw = text.encode() if isinstance(text, str) else text
    return refused(api, raw=raw, content_type="text/csv")


def test_a_row_with_more_fields_than_the_header_is_refused(api: Api) -> None:
    """A decimal comma splits a bid in two: `0,57` must not become a bid of 0."""
    problem = csv_refused(api, HEADER + f"{LINE_ITEM},a,set_bid,0,57,42\n{LINE_ITEM},b,pause,,\n")
    assert named(problem) == {(1, "row")}
    assert "6 fields where the header has 5" in problem["errors"][0]["reason"]


def test_a_giant_csv_field_is_named_by_row_and_field(api: Api) -> None:
    problem = csv_refused(api, HEADER + f"{LINE_ITEM},a,pause,,\n{LINE_ITEM},{BIG},pause,,\n")
    assert named(problem) == {(2, "sku_id")}


def test_a_csv_that_is_not_utf8_is_refused_with_the_byte(api: Api) -> None:
    latin1 = (HEADER + f"{LINE_ITEM},caf\u00e9,pause,,\n").encode("latin-1")
    assert api.call("POST", "/v1/jobs", raw=latin1, content_type="text/csv").status == 400


def test_duplicate_header_columns_are_refused(api: Api) -> None:
    problem = csv_refused(api, "line_item_id,sku_id,action,bid_override,sku_id\n1,a,pause,,b\n")
    assert named(problem) == {(0, "sku_id")}
    assert "columns 2 and 5" in problem["errors"][0]["reason"]


def test_a_semicolon_separated_file_gets_one_line_saying_so(api: Api) -> None:
    problem = csv_refused(api, "line_item_id;sku_id;action;bid_override\n1;a;pause;\n")
    assert len(problem["errors"]) == 1
    reason = problem["errors"][0]["reason"]
    assert "separated by semicolons" in reason
    assert "line_item_id;sku_id;action;bid_override" in reason


def test_trailing_zeros_are_not_precision(api: Api) -> None:
    body = {"items": [{**items(1)[0], "bid_override": "0.50000"}]}
    job = api.call("POST", "/v1/jobs", body)
    assert job.status == 201, job.json


def test_an_idempotency_key_names_one_request(api: Api) -> None:
    """The same key and body: the earlier job (200). The same key, another body: 409, nothing
    stored. A CSV with the same rows as the JSON is the same request."""
    body = {"items": items(3), "idempotency_key": "night-13"}
    first = api.call("POST", "/v1/jobs", body)
    assert first.status == 201
    again = api.call("POST", "/v1/jobs", {**body, "items": items(3)})
    assert (again.status, again.json["id"]) == (200, first.json["id"])
    rows = "".join(f"{i['line_item_id']},{i['sku_id']},set_bid,1.2500,\n" for i in items(3))
    as_csv = api.call(
        "POST",
        "/v1/jobs?idempotency_key=night-13",
        raw=(HEADER + rows).encode(),
        content_type="text/csv",
    )
    assert (as_csv.status, as_csv.json["id"]) == (200, first.json["id"])
    before = table_counts(api.engine)
    for other in [
        {**body, "items": items(4)},
        {**body, "priority": "high"},
        {**body, "items": [{**items(3)[0], "bid_override": "2"}, *items(3)[1:]]},
    ]:
        conflict = api.call("POST", "/v1/jobs", other)
        assert conflict.status == 409, conflict.json
        assert conflict.json["job_id"] == first.json["id"]
        assert "different request" in conflict.json["detail"]
    assert table_counts(api.engine) == before
