"""POST /v1/jobs: JSON or CSV, validated whole, all or nothing, idempotent, size-limited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.api.conftest import Api, serve, table_counts
from tests.jobs import make_jobs
from worker.api import create_app
from worker.client import ApiError

LINE_ITEM = 5_000_000_000_000_001
HEADER = "line_item_id,sku_id,action,bid_override,account_id\n"


def items(n: int, line_items: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "line_item_id": LINE_ITEM + i % line_items,
            "sku_id": f"sku-{i}",
            "action": "set_bid",
            "bid_override": "1.25",
        }
        for i in range(n)
    ]


def stored_items(api: Api, job_id: int) -> list[tuple[Any, ...]]:
    with api.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT row_number, line_item_id, sku_id, action, desired_bid FROM items"
                " WHERE job_id = :j ORDER BY row_number"
            ),
            {"j": job_id},
        ).all()
    return [tuple(r) for r in rows]


def test_a_json_job_is_stored_dispatched_and_answered_with_its_document(api: Api) -> None:
    reply = api.call("POST", "/v1/jobs", {"items": items(5, line_items=2), "priority": "high"})
    assert reply.status == 201
    job = reply.json
    assert reply.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["total"] == 5
    assert job["priority"] == "high"
    assert job["counts"] == {"pending": 5}
    assert job["completion_ratio"] == 0
    assert job["eta_seconds"] >= 1
    assert job["failures"] == []
    assert job["notification"] is None
    assert len(api.dispatched) == 2
    rows = stored_items(api, job["id"])
    assert rows[0][:4] == (1, LINE_ITEM, "sku-0", "set_bid")
    assert str(rows[0][4]) == "1.2500"


def test_bad_rows_are_refused_with_their_numbers_and_nothing_is_stored(api: Api) -> None:
    before = table_counts(api.engine)
    body = items(3)
    body[1]["line_item_id"] = -4
    body[2] = {"line_item_id": LINE_ITEM, "sku_id": "sku-0", "action": "set_bid"}
    reply = api.call("POST", "/v1/jobs", {"items": [*body, "not an object"]})
    assert reply.status == 400
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.json["total_errors"] == 1
    assert reply.json["errors"] == [{"row": 4, "field": "item", "reason": "must be an object"}]
    reply = api.call("POST", "/v1/jobs", {"items": body})
    assert reply.status == 400
    problems = {(e["row"], e["field"]) for e in reply.json["errors"]}
    assert problems == {(2, "line_item_id"), (3, "bid_override")}
    assert reply.json["total_errors"] == 2
    assert table_counts(api.engine) == before
    assert api.dispatched == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": []}, "rows"),
        ({"items": items(1), "priority": "urgent"}, "priority"),
        ({"items": items(1), "submitted_by": "someone-else"}, "submitted_by"),
        ({"items": items(1), "not_before": "2026-11-23T02:00:00"}, "not_before"),
        ({"items": items(1), "callback_url": "ftp://example.com/x"}, "callback_url"),
        ({"items": items(1), "options": {"cancel_requested": True}}, "options.cancel_requested"),
        ({"items": items(1), "options": {"max_change_ratio": "0.5"}}, "options.max_change_ratio"),
        ({"items": items(1), "dry_run": "yes"}, "dry_run"),
        ({"items": "a,b"}, "items"),
        ({"priority": "high"}, "items"),
    ],
)
def test_bad_fields_are_refused_by_name(api: Api, body: dict[str, Any], field: str) -> None:
    before = table_counts(api.engine)
    reply = api.call("POST", "/v1/jobs", body)
    assert reply.status == 400, reply.json
    problem = reply.json
    assert problem.get("field") == field or any(e["field"] == field for e in problem["errors"])
    assert table_counts(api.engine) == before


@pytest.mark.parametrize("raw", [b"{", b"[]", b"\xff", b"null"])
def test_a_body_that_is_not_a_json_object_is_a_400(api: Api, raw: bytes) -> None:
    assert api.call("POST", "/v1/jobs", raw=raw).status == 400


def test_other_media_types_are_a_415(api: Api) -> None:
    reply = api.call("POST", "/v1/jobs", raw=b"x", content_type="text/plain")
    assert reply.status == 415
    assert reply.json["status"] == 415


def test_the_same_idempotency_key_answers_the_same_job(api: Api, engine: sa.Engine) -> None:
    body = {"items": items(2), "idempotency_key": "night-2026-11-23"}
    first = api.call("POST", "/v1/jobs", body)
    again = api.call("POST", "/v1/jobs", body)
    assert (first.status, again.status) == (201, 200)
    assert again.json["id"] == first.json["id"]
    assert again.json["total"] == 2
    other = Api(api.url, make_jobs(engine).keys.create(api.submitter + "-other").key, "", engine)
    third = other.call("POST", "/v1/jobs", body)
    assert third.status == 201
    assert third.json["id"] != first.json["id"]


def test_a_csv_body_takes_the_job_fields_as_query_parameters(api: Api) -> None:
    csv = HEADER + f"{LINE_ITEM},a,set_bid,0.5,1001\n{LINE_ITEM},b,pause,,\n"
    when = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    job = api.client.submit_csv(
        csv.encode(),
        idempotency_key="csv-1",
        priority="high",
        dry_run=True,
        not_before=when,
        options={"skip_read": True},
    )
    assert job["total"] == 2
    assert job["priority"] == "high"
    assert job["dry_run"] is True
    assert datetime.fromisoformat(job["not_before"]) == when
    assert job["eta_seconds"] >= 3 * 3600 - 5
    with api.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT options, idempotency_key FROM jobs WHERE id = :j"), {"j": job["id"]}
        ).one()
    assert row.options == {"skip_read": True}
    assert row.idempotency_key == "csv-1"
    assert stored_items(api, job["id"])[1][:4] == (2, LINE_ITEM, "b", "pause")


def test_bad_csv_rows_are_numbered_from_the_first_data_row(api: Api) -> None:
    before = table_counts(api.engine)
    csv = HEADER + f"{LINE_ITEM},a,set_bid,0.5,\n{LINE_ITEM},b,jump,,\n"
    with pytest.raises(ApiError) as refused:
        api.client.submit_csv(csv.encode())
    assert refused.value.status == 400
    assert [(e["row"], e["field"]) for e in refused.value.errors] == [(2, "action")]
    missing = api.call("POST", "/v1/jobs", raw=b"sku_id,action\na,pause\n", content_type="text/csv")
    assert missing.status == 400
    assert {(e["row"], e["field"]) for e in missing.json["errors"]} == {
        (0, "line_item_id"),
        (0, "bid_override"),
    }
    bad_options = api.call(
        "POST", "/v1/jobs?options=%7Bnope", raw=csv.encode(), content_type="text/csv"
    )
    assert bad_options.status == 400
    assert bad_options.json["field"] == "options"
    assert table_counts(api.engine) == before


def test_a_scheduled_job_is_held_back_until_its_time(api: Api) -> None:
    when = datetime.now(UTC) + timedelta(hours=6)
    job = api.client.submit(items(3, line_items=3), not_before=when)
    assert api.dispatched == []
    with api.engine.connect() as conn:
        chunks = (
            conn.execute(
                sa.text("SELECT not_before FROM chunks WHERE job_id = :j"), {"j": job["id"]}
            )
            .scalars()
            .all()
        )
    assert len(chunks) == 3
    assert all(abs((c - when).total_seconds()) < 1 for c in chunks)


def test_a_callback_url_is_kept_and_its_delivery_reported(api: Api) -> None:
    job = api.client.submit(items(1), callback_url="https://hooks.example.com/promobulk?t=1")
    assert job["notification"] == {
        "attempts": 0,
        "last_status": None,
        "last_error": None,
        "delivered_at": None,
    }


def test_a_body_over_the_limit_is_a_413_and_stores_nothing(engine: sa.Engine) -> None:
    jobs = make_jobs(engine, PROMOBULK_API_MAX_BODY_BYTES=2048)
    app = create_app(jobs)
    with serve(app) as url:
        api = Api(url, jobs.keys.create("limited").key, "limited", engine)
        before = table_counts(engine)
        small = api.call("POST", "/v1/jobs", {"items": items(3)})
        large = api.call("POST", "/v1/jobs", {"items": items(100)})
        csv = (HEADER + f"{LINE_ITEM},s,pause,,\n" * 200).encode()
        large_csv = api.call("POST", "/v1/jobs", raw=csv, content_type="text/csv")
    assert small.status == 201
    assert large.status == 413
    assert large.json["status"] == 413
    assert large_csv.status == 413
    assert table_counts(engine)[0] == before[0] + 1
