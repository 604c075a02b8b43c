"""The OpenAPI document matches the server: the same routes, and schemathesis finds no server
error and no answer outside the document across every operation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.api.conftest import Api, serve, table_counts
from tests.jobs import make_jobs
from worker.api import create_app
from worker.api.openapi import openapi_document
from worker.client import PromobulkClient

OPENAPI_DOCUMENT = openapi_document()


@schemathesis.serializer("text/csv")
def _csv_body(_: Any, value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else str(value).encode()


def test_every_route_is_documented_and_every_documented_route_exists(
    engine: sa.Engine,
) -> None:
    app = create_app(make_jobs(engine))
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (method.upper(), path)
        for path, operations in OPENAPI_DOCUMENT["paths"].items()
        for method in operations
    }
    assert served == documented


def test_the_served_document_is_the_one_in_the_code(api: Api) -> None:
    reply = api.call("GET", "/v1/openapi.json")
    assert reply.status == 200
    assert reply.json == OPENAPI_DOCUMENT
    assert schemathesis.openapi.from_dict(reply.json).validate() is None


@pytest.fixture(scope="module")
def served_api(engine: sa.Engine) -> Iterator[tuple[str, str]]:
    """The API with a few jobs in it, queued and cancelled, for the fuzzed ids to find."""
    jobs = make_jobs(engine)
    with serve(create_app(jobs)) as url:
        key = jobs.keys.create("schemathesis").key
        client = PromobulkClient(url, key)
        for n in range(3):
            job = client.submit([{"line_item_id": 900 + n, "sku_id": "s", "action": "pause"}])
            if n:
                client.cancel(job["id"])
        yield url, key


@pytest.fixture(scope="module")
def served_schema(served_api: tuple[str, str]) -> Any:
    url, key = served_api
    return schemathesis.openapi.from_url(
        f"{url}/v1/openapi.json", headers={"Authorization": f"Bearer {key}"}
    )


EXAMPLES = 150
OPERATIONS = [(m, p) for p, ops in OPENAPI_DOCUMENT["paths"].items() for m in ops]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_server_error_and_no_answer_outside_the_document(
    served_schema: Any, served_api: tuple[str, str], engine: sa.Engine, method: str, path: str
) -> None:
    """Every operation fuzzed from its schema: no 5xx, no answer the document does not
    describe, and a refused request (any 4xx) leaves jobs, chunks and items as they were."""
    url, key = served_api
    operation = served_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def call(case: Any) -> None:
        before = table_counts(engine)
        response = case.call_and_validate(
            base_url=url,
            headers={"Authorization": f"Bearer {key}"},
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )
        if response.status_code >= 400:
            assert table_counts(engine) == before, "a refused request changed the tables"

    call()
