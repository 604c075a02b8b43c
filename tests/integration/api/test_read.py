"""Reading: job lists with cursor paging, one job, and its items as JSON pages or streamed CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.integration.api.conftest import Api
from tests.integration.api.test_submit import LINE_ITEM, items
from worker.client import ApiError
from worker.jobs.export import EXPORT_COLUMNS


def test_jobs_are_listed_newest_first_a_page_at_a_time(api: Api) -> None:
    made = [api.client.submit(items(1))["id"] for _ in range(5)]
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        query = f"/v1/jobs?submitted_by={api.submitter}&limit=2"
        reply = api.call("GET", query + (f"&cursor={cursor}" if cursor else ""))
        assert reply.status == 200
        pages.append([j["id"] for j in reply.json["jobs"]])
        cursor = reply.json["next_cursor"]
        if cursor is None:
            break
    assert pages == [made[:-3:-1], made[-3:-5:-1], made[:1]]
    assert [j["id"] for j in api.client.jobs(submitted_by=api.submitter)] == made[::-1]
    first = api.call("GET", f"/v1/jobs?submitted_by={api.submitter}&limit=1").json["jobs"][0]
    assert {"completion_ratio", "eta_seconds", "counts", "status"} <= set(first)


def test_jobs_are_filtered_by_status(api: Api) -> None:
    queued = api.client.submit(items(1))["id"]
    cancelled = api.client.submit(items(1))["id"]
    api.client.cancel(cancelled)
    by_status = {
        s: [j["id"] for j in api.client.jobs(status=s, submitted_by=api.submitter)]
        for s in ("queued", "cancelled", "running")
    }
    assert by_status == {"queued": [queued], "cancelled": [cancelled], "running": []}


@pytest.mark.parametrize(
    "query", ["status=lost", "cursor=nope", "limit=0", "limit=100000", "limit=x"]
)
def test_bad_list_queries_are_a_400(api: Api, query: str) -> None:
    reply = api.call("GET", f"/v1/jobs?{query}")
    assert reply.status == 400
    assert reply.headers["Content-Type"].startswith("application/problem+json")


def test_a_job_is_shown_and_an_unknown_one_is_a_404(api: Api) -> None:
    job = api.client.submit(items(4, line_items=2))
    shown = api.client.job(job["id"])
    assert shown["id"] == job["id"]
    assert shown["submitted_by"] == api.submitter
    assert shown["chunks"] == {"queued": 2}
    # Two chunks, two calls each, at 250 calls a minute: at least 1 second.
    assert shown["eta_seconds"] == 1
    for path in ("/v1/jobs/999999999999", "/v1/jobs/abc", "/v1/jobs/0", "/v1/jobs/-1"):
        reply = api.call("GET", path)
        assert reply.status == 404, path
        assert reply.json["status"] == 404


def _job_with_items(api: Api) -> tuple[int, list[dict[str, Any]]]:
    rows = items(12, line_items=3)
    rows[5]["sku_id"] = '=HYPERLINK("http://evil")'
    return api.client.submit(rows)["id"], rows


def test_items_come_in_input_order_a_page_at_a_time(api: Api) -> None:
    job_id, rows = _job_with_items(api)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        path = f"/v1/jobs/{job_id}/items?limit=5" + (f"&cursor={cursor}" if cursor else "")
        page = api.call("GET", path).json
        seen += [i["sku_id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [r["sku_id"] for r in rows]
    first = api.client.job(job_id) and next(api.client.items(job_id))
    assert first["row"] == 1
    assert first["line_item_id"] == str(LINE_ITEM)
    assert first["outcome"] == "pending"
    assert first["bid_override"] == "1.25"


def test_items_are_filtered(api: Api) -> None:
    job_id, rows = _job_with_items(api)
    by_line_item = list(api.client.items(job_id, line_item_id=LINE_ITEM + 1))
    assert [i["sku_id"] for i in by_line_item] == [r["sku_id"] for r in rows[1::3]]
    assert [i["row"] for i in api.client.items(job_id, sku_id="sku-7")] == [8]
    assert list(api.client.items(job_id, status="failed")) == []
    assert list(api.client.items(job_id, error_kind="guardrail")) == []
    for query in ("status=nope", "error_kind=nope", "line_item_id=x", "cursor=zz", "format=xml"):
        assert api.call("GET", f"/v1/jobs/{job_id}/items?{query}").status == 400, query
    assert api.call("GET", "/v1/jobs/999999999/items").status == 404


def _csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


def test_items_stream_as_csv_by_accept_header_or_format(api: Api) -> None:
    job_id, rows = _job_with_items(api)
    by_accept = api.call("GET", f"/v1/jobs/{job_id}/items", headers={"Accept": "text/csv"})
    by_format = api.call("GET", f"/v1/jobs/{job_id}/items?format=csv&line_item_id={LINE_ITEM}")
    assert by_accept.status == 200
    assert by_accept.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in by_accept.headers["Content-Disposition"]
    assert by_accept.body.decode().splitlines()[0] == ",".join(EXPORT_COLUMNS)
    exported = _csv(by_accept.body)
    assert len(exported) == 12
    assert exported[5]["sku_id"].startswith("'=")  # never a live formula in a spreadsheet
    assert [r["sku_id"] for r in _csv(by_format.body)] == [r["sku_id"] for r in rows[::3]]
    out = io.BytesIO()
    api.client.export_csv(job_id, out, status="pending")
    assert out.getvalue() == by_accept.body
    missing = api.call("GET", "/v1/jobs/999999999/items?format=csv")
    assert missing.status == 404
    assert missing.headers["Content-Type"].startswith("application/problem+json")


def test_a_large_export_streams_every_row(api: Api) -> None:
    job_id = api.client.submit(items(6000, line_items=20))["id"]
    out = io.BytesIO()
    api.client.export_csv(job_id, out)
    exported = _csv(out.getvalue())
    assert len(out.getvalue()) > 4 * 64 * 1024  # several pieces of the stream
    assert [r["sku_id"] for r in exported] == [f"sku-{i}" for i in range(6000)]


def test_the_client_raises_the_problem_it_was_answered(api: Api) -> None:
    with pytest.raises(ApiError) as missing:
        api.client.job(987654321)
    assert missing.value.status == 404
    assert missing.value.problem["detail"] == "no job 987654321"
