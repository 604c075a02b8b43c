"""The OpenAPI 3.1 document served at /v1/openapi.json, generated from the documents' models.

Schemas come from `worker.jobs.documents`, so a field, a limit or an enum is written once. What
is written here is only what HTTP adds: paths, parameters, status codes. A test holds the
document and the router to the same set of (method, path), and schemathesis holds the server to
its schemas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from worker.domain.enums import JobStatus
from worker.domain.validation import INT64_MAX, SKU_MAX_LEN
from worker.jobs.documents import (
    MAX_ITEMS_PAGE,
    MAX_JOBS_PAGE,
    ApplyRequest,
    DerivedJob,
    Health,
    HistoryPage,
    ItemPage,
    ItemQuery,
    JobDocument,
    JobFields,
    JobListQuery,
    JobPage,
    JobSubmission,
    Problem,
    RetryRequest,
    RevertRequest,
)

_REF = "#/components/schemas/{model}"
_PROBLEM_JSON = "application/problem+json"
_REQUESTS: tuple[type[BaseModel], ...] = (
    JobSubmission,
    RetryRequest,
    RevertRequest,
    ApplyRequest,
)
_RESPONSES: tuple[type[BaseModel], ...] = (
    JobDocument,
    DerivedJob,
    JobPage,
    ItemPage,
    HistoryPage,
    Problem,
    Health,
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value, never null."""
    options = schema.get("anyOf")
    if options is None:
        return schema
    rest = [s for s in options if s.get("type") != "null"]
    base = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return {**base, **rest[0]} if len(rest) == 1 else {**base, "anyOf": rest}


def _query(name: str, schema: Mapping[str, Any], description: str = "") -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": False,
        "schema": _without_null(dict(schema)),
    }
    if description or "description" in schema:
        parameter["description"] = description or schema["description"]
    return parameter


def _model_query(model: type[BaseModel], **overrides: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A model's fields as query parameters (inline schemas: no $ref in a parameter)."""
    schema = model.model_json_schema(ref_template=_REF)
    properties = schema["properties"]
    return [_query(name, overrides.get(name, properties[name])) for name in properties]


def _limit(most: int, default: int) -> dict[str, Any]:
    return _query(
        "limit", {"type": "integer", "minimum": 1, "maximum": most, "default": default}, "page size"
    )


_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
}
_CURSOR = _query("cursor", {"type": "string"}, "`next_cursor` of the previous page")
_LOCATION = {"Location": {"schema": {"type": "string"}, "description": "the job's URL"}}


@dataclass(frozen=True)
class Answer:
    description: str
    model: type[BaseModel] | None = None
    location: bool = False
    content: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Operation:
    method: Literal["get", "post"]
    path: str
    summary: str
    answers: Mapping[int, Answer]
    parameters: Sequence[Mapping[str, Any]] = ()
    body: Mapping[str, Any] | None = None
    public: bool = False
    description: str | None = None
    errors: Mapping[int, str] = field(default_factory=dict)

    def _responses(self) -> dict[str, Any]:
        responses: dict[str, Any] = {}
        for status, answer in self.answers.items():
            entry: dict[str, Any] = {"description": answer.description}
            if answer.content is not None:
                entry["content"] = dict(answer.content)
            elif answer.model is not None:
                entry["content"] = {"application/json": {"schema": _ref(answer.model)}}
            if answer.location:
                entry["headers"] = _LOCATION
            responses[str(status)] = entry
        problems = dict(self.errors)
        if not self.public:
            problems.setdefault(401, "no key, or an unknown or revoked one")
        for status, description in sorted(problems.items()):
            responses[str(status)] = {
                "description": description,
                "content": {_PROBLEM_JSON: {"schema": _ref(Problem)}},
            }
        return responses

    def document(self) -> dict[str, Any]:
        operation: dict[str, Any] = {"summary": self.summary, "responses": self._responses()}
        if self.description:
            operation["description"] = self.description
        if self.public:
            operation["security"] = []
        if self.parameters:
            operation["parameters"] = [dict(p) for p in self.parameters]
        if self.body is not None:
            operation["requestBody"] = dict(self.body)
        return operation


def _derived(path: str, summary: str, body: type[BaseModel]) -> Operation:
    """Retry and revert: a child job of the parent's SKUs, linked by parent_job_id."""
    return Operation(
        "post",
        path,
        summary,
        {
            201: Answer("the child job", DerivedJob, location=True),
            200: Answer("the child job made earlier with this idempotency key", DerivedJob),
        },
        parameters=[_JOB_ID],
        body={"required": False, "content": {"application/json": {"schema": _ref(body)}}},
        errors={
            400: "a bad body",
            403: "a read key changes nothing",
            404: "no such job",
            409: "nothing to do (no SKU qualifies, the job has not finished), or the"
            " idempotency key was used for a different request",
            422: "the child job's rows were refused; nothing stored",
        },
    )


def _csv_job_fields() -> list[dict[str, Any]]:
    """A CSV body's job fields, as query parameters; `options` as JSON text."""
    options = {"type": "string", "description": "JobOptions as JSON"}
    return _model_query(JobFields, options=options)


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get",
        "/healthz",
        "Liveness and the database",
        {200: Answer("up", Health)},
        public=True,
        errors={503: "the database does not answer"},
    ),
    Operation(
        "get",
        "/metrics",
        "Prometheus metrics: jobs and chunks by status, broker queue depth",
        {
            200: Answer(
                "the Prometheus text exposition format",
                content={"text/plain": {"schema": {"type": "string"}}},
            )
        },
        public=True,
        description="No key needed, like /healthz: counts only. The workers serve their own"
        " counters on PROMOBULK_WORKER_METRICS_PORT.",
        errors={500: "the database does not answer"},
    ),
    Operation(
        "get",
        "/v1/openapi.json",
        "This document",
        {200: Answer("OpenAPI 3.1", content={"application/json": {"schema": {"type": "object"}}})},
        public=True,
        description="No key needed, as API tooling expects: the document holds no data.",
    ),
    Operation(
        "post",
        "/v1/jobs",
        "Submit a job: validated whole, stored all or nothing",
        {
            201: Answer("the job was stored", JobDocument, location=True),
            200: Answer("the job stored earlier with this idempotency key", JobDocument, True),
        },
        parameters=_csv_job_fields(),
        body={
            "required": True,
            "content": {
                "application/json": {"schema": _ref(JobSubmission)},
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": "header line_item_id,sku_id,action,bid_override"
                        "[,account_id]; the job's fields as query parameters (options as JSON)",
                    }
                },
            },
        },
        errors={
            400: "bad rows (each with its row number) or fields; nothing stored",
            403: "a read key may not submit",
            409: "the idempotency key was used for a different request; nothing stored",
            413: "the body is larger than PROMOBULK_API_MAX_BODY_BYTES",
            415: "neither application/json nor text/csv",
        },
    ),
    Operation(
        "get",
        "/v1/jobs",
        "Jobs, newest first",
        {200: Answer("a page", JobPage)},
        parameters=[
            _query("status", {"type": "string", "enum": [s.value for s in JobStatus]}, "status"),
            _query("submitted_by", {"type": "string", "maxLength": 200}, "the key's name"),
            *_model_query(JobListQuery),
            _CURSOR,
            _limit(MAX_JOBS_PAGE, 50),
        ],
        errors={400: "a bad filter or cursor"},
    ),
    Operation(
        "get",
        "/v1/jobs/{job_id}",
        "A job: status, counts, completion ratio, times, ETA, failures",
        {200: Answer("the job", JobDocument)},
        parameters=[_JOB_ID],
        errors={404: "no such job"},
    ),
    Operation(
        "get",
        "/v1/jobs/{job_id}/items",
        "A job's SKUs and outcomes: JSON pages, or all of them as streamed CSV"
        " (Accept: text/csv or format=csv)",
        {
            200: Answer(
                "a JSON page, or the CSV export (input columns first, so it can be fixed and"
                " submitted again)",
                content={
                    "application/json": {"schema": _ref(ItemPage)},
                    "text/csv": {"schema": {"type": "string"}},
                },
            )
        },
        parameters=[
            _JOB_ID,
            *_model_query(ItemQuery),
            _CURSOR,
            _limit(MAX_ITEMS_PAGE, 100),
            _query("format", {"type": "string", "enum": ["json", "csv"]}, "overrides Accept"),
        ],
        errors={400: "a bad filter or cursor", 404: "no such job"},
    ),
    _derived(
        "/v1/jobs/{job_id}/retry",
        "A child job of the failed SKUs, optionally of some error kinds only",
        RetryRequest,
    ),
    _derived(
        "/v1/jobs/{job_id}/revert",
        "A child job restoring the recorded before-values of the SKUs the job changed",
        RevertRequest,
    ),
    _derived(
        "/v1/jobs/{job_id}/apply",
        "A child job making for real the changes a finished dry run planned",
        ApplyRequest,
    ),
    Operation(
        "get",
        "/v1/line-items/{line_item_id}/skus/{sku_id}/history",
        "A (line item, SKU)'s changes across jobs, newest first: when, which job, who,"
        " action, before and after, outcome",
        {200: Answer("a page", HistoryPage)},
        parameters=[
            {
                "name": "line_item_id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
            },
            {
                "name": "sku_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": SKU_MAX_LEN},
                "description": "percent-encoded (a / is %2F)",
            },
            _CURSOR,
            _limit(MAX_JOBS_PAGE, 50),
        ],
        description="A submit key sees its own jobs' entries only. Items of jobs past"
        " PROMOBULK_RETENTION_DAYS are no longer stored.",
        errors={400: "a bad line item, SKU or cursor"},
    ),
    Operation(
        "post",
        "/v1/jobs/{job_id}/cancel",
        "Cancel: chunks not started never run, running ones stop at their next call",
        {200: Answer("the job", JobDocument)},
        parameters=[_JOB_ID],
        errors={403: "a read key changes nothing", 404: "no such job"},
    ),
)


def openapi_document() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(m, "validation") for m in _REQUESTS] + [(m, "serialization") for m in _RESPONSES],
        ref_template=_REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method] = operation.document()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "promobulk",
            "version": "1",
            "description": "Bulk changes to Criteo Retail Media promoted products: jobs of SKU"
            " changes, run under the app's rate limit, with an outcome for every SKU.",
        },
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "promobulk api-key"}
            },
            "schemas": definitions["$defs"],
        },
        "paths": paths,
    }
