"""The OpenAPI 3.1 document served at /v1/openapi.json, written as data next to the routes.

A test holds it and the router to the same set of (method, path), and schemathesis holds the
server to its schemas.
"""

from __future__ import annotations

from typing import Any

from worker.domain.enums import Action, ErrorKind, ItemStatus, JobStatus, Priority
from worker.domain.validation import INT64_MAX
from worker.export import EXPORT_COLUMNS
from worker.service import MAX_ITEMS_PAGE, MAX_JOBS_PAGE

_PROBLEM_JSON = "application/problem+json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {_PROBLEM_JSON: {"schema": _ref("Problem")}}}


def _ok(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }
    if headers:
        response["headers"] = headers
    return response


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_DECIMAL = {"type": "string", "pattern": "^[0-9]{1,6}(\\.[0-9]{1,4})?$"}
_LOCATION = {"Location": {"schema": {"type": "string"}, "description": "the job's URL"}}
_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
}
_UNAUTHORIZED = _problem("no key, or an unknown or revoked one")
_NOT_FOUND = _problem("no such job")
_CURSOR = _query("cursor", {"type": "string"}, "`next_cursor` of the previous page")

_JOB_FIELDS: dict[str, Any] = {
    "idempotency_key": {
        "type": ["string", "null"],
        "minLength": 1,
        "maxLength": 200,
        "description": "the same key from the same submitter answers with the same job (200)",
    },
    "priority": {"type": "string", "enum": [p.value for p in Priority], "default": "normal"},
    "dry_run": {"type": "boolean", "default": False},
    "callback_url": {
        "type": ["string", "null"],
        "format": "uri",
        "pattern": "^https?://[^/?#@\\s]+",
        "description": "POSTed the job document once it ends, signed with"
        " `X-Promobulk-Signature: sha256=<HMAC-SHA256 of the body>`",
    },
    "not_before": {
        "type": ["string", "null"],
        "format": "date-time",
        "description": "the job starts no earlier (with a time zone)",
    },
    "options": _ref("JobOptions"),
}

_CSV_QUERY: dict[str, Any] = {
    "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
    "priority": {"type": "string", "enum": [p.value for p in Priority]},
    "dry_run": {"type": "boolean"},
    "callback_url": {"type": "string", "format": "uri", "pattern": "^https?://[^/?#@\\s]+"},
    "not_before": {"type": "string", "format": "date-time"},
    "options": {"type": "string", "description": "JobOptions as JSON"},
}

_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "field": {"type": "string"},
            "total_errors": {"type": "integer"},
            "errors": {
                "type": "array",
                "description": "bad rows: row 1 is the first item or CSV data row, 0 the job",
                "items": {
                    "type": "object",
                    "required": ["row", "field", "reason"],
                    "properties": {
                        "row": {"type": "integer"},
                        "field": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                },
            },
        },
    },
    "JobOptions": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "skip_read": {"type": "boolean", "description": "no read first: before-values unknown"},
            "guardrails": {"type": "boolean", "description": "false turns the guardrails off"},
            "max_bid": {
                "anyOf": [{"type": "number", "minimum": 0}, _DECIMAL, {"type": "null"}],
                "description": "no bid above it",
            },
            "max_change_ratio": {
                "anyOf": [{"type": "number", "minimum": 1}, _DECIMAL, {"type": "null"}],
                "description": "a new bid at most this many times the current one, or divided"
                " by it (default PROMOBULK_MAX_CHANGE_RATIO; null: no limit)",
            },
        },
    },
    "ItemInput": {
        "type": "object",
        "description": "one SKU change, with a CSV row's columns; bid_override is required for"
        " set_bid and must be absent for remove, pause and unpause",
        "required": ["line_item_id", "sku_id", "action"],
        "properties": {
            "line_item_id": {
                "anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
                    {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"},
                ]
            },
            "sku_id": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": "\\S"},
            "action": {"type": "string", "enum": [a.value for a in Action]},
            "bid_override": {
                "anyOf": [{"type": "number", "minimum": 0}, _DECIMAL, {"type": "null"}],
                "description": "at most PROMOBULK_MAX_BID, 4 decimals at most",
            },
            "account_id": {"type": ["string", "null"], "maxLength": 100},
        },
    },
    "JobRequest": {
        "type": "object",
        "required": ["items"],
        "additionalProperties": False,
        "properties": {
            "items": {"type": "array", "minItems": 1, "items": _ref("ItemInput")},
            **_JOB_FIELDS,
        },
    },
    "RetryRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "error_kinds": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "enum": [k.value for k in ErrorKind]},
            },
            "idempotency_key": _JOB_FIELDS["idempotency_key"],
            "options": {
                "allOf": [_ref("JobOptions")],
                "description": "overrides the per-job settings the child keeps from its parent",
            },
        },
    },
    "RevertRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"idempotency_key": _JOB_FIELDS["idempotency_key"]},
    },
    "DerivedJob": {
        "allOf": [
            _ref("Job"),
            {
                "type": "object",
                "required": ["skipped"],
                "properties": {
                    "skipped": {
                        "type": "object",
                        "description": "SKUs a revert could not restore, by reason",
                        "additionalProperties": {"type": "integer"},
                    }
                },
            },
        ]
    },
    "JobSummary": {
        "type": "object",
        "required": ["id", "status", "submitted_by", "total", "done", "counts", "completion_ratio"],
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": [s.value for s in JobStatus]},
            "submitted_by": {"type": "string"},
            "priority": {"type": "string", "enum": [p.value for p in Priority]},
            "dry_run": {"type": "boolean"},
            "total": {"type": "integer"},
            "done": {"type": "integer"},
            "counts": {
                "type": "object",
                "description": "SKUs by item status",
                "additionalProperties": {"type": "integer"},
            },
            "chunks": {"type": "object", "additionalProperties": {"type": "integer"}},
            "completion_ratio": {"type": "number", "minimum": 0, "maximum": 1},
            "eta_seconds": {
                "type": ["integer", "null"],
                "description": "a floor: unfinished chunks x 2 calls (a read and a write) /"
                " CRITEO_RATE_LIMIT_PER_MINUTE, after not_before; null once the job has ended",
            },
            "parent_job_id": {"type": ["integer", "null"]},
            "derived_reason": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": _NULLABLE_TIME,
            "finished_at": _NULLABLE_TIME,
            "not_before": _NULLABLE_TIME,
        },
    },
    "Job": {
        "allOf": [
            _ref("JobSummary"),
            {
                "type": "object",
                "required": ["failures", "notification"],
                "properties": {
                    "failures": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "error_kind": {"type": ["string", "null"]},
                                "error_code": {"type": ["string", "null"]},
                                "count": {"type": "integer"},
                            },
                        },
                    },
                    "notification": {
                        "type": ["object", "null"],
                        "description": "delivery of the completion callback; null without one",
                        "properties": {
                            "attempts": {"type": "integer"},
                            "last_status": {"type": ["integer", "null"]},
                            "last_error": {"type": ["string", "null"]},
                            "delivered_at": _NULLABLE_TIME,
                        },
                    },
                },
            },
        ]
    },
    "JobPage": {
        "type": "object",
        "required": ["jobs", "next_cursor"],
        "properties": {
            "jobs": {"type": "array", "items": _ref("JobSummary")},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "Item": {
        "type": "object",
        "description": "one SKU change and its outcome; ids and bids as strings (exact)",
        "required": [*EXPORT_COLUMNS, "row", "description"],
        "properties": {
            "row": {"type": "integer"},
            "line_item_id": {"type": "string"},
            "sku_id": {"type": "string"},
            "action": {"type": "string"},
            "bid_override": _NULLABLE_TEXT,
            "account_id": _NULLABLE_TEXT,
            "outcome": {"type": "string", "enum": [s.value for s in ItemStatus]},
            "error_kind": _NULLABLE_TEXT,
            "error_code": _NULLABLE_TEXT,
            "error_detail": _NULLABLE_TEXT,
            "bid_before": _NULLABLE_TEXT,
            "bid_after": _NULLABLE_TEXT,
            "product_status_before": _NULLABLE_TEXT,
            "product_status_after": _NULLABLE_TEXT,
            "attempts": {"type": "integer"},
            "trace_id": _NULLABLE_TEXT,
            "finished_at": _NULLABLE_TIME,
            "description": {"type": "string", "description": "what happened, or would"},
        },
    },
    "ItemPage": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": _ref("Item")},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
}

_ITEM_FILTERS = [
    _query("status", {"type": "string", "enum": [s.value for s in ItemStatus]}, "item status"),
    _query("error_kind", {"type": "string", "enum": [k.value for k in ErrorKind]}, "why it failed"),
    _query("line_item_id", {"type": "integer", "minimum": 1, "maximum": INT64_MAX}, "line item"),
    _query("sku_id", {"type": "string", "minLength": 1, "maxLength": 500}, "SKU"),
]


def _derived(summary: str, body: str) -> dict[str, Any]:
    """Retry and revert: a child job of the parent's SKUs, linked by parent_job_id."""
    return {
        "summary": summary,
        "parameters": [_JOB_ID],
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _ref(body)}},
        },
        "responses": {
            "201": _ok("the child job", "DerivedJob", _LOCATION),
            "200": _ok("the child job made earlier with this idempotency key", "DerivedJob"),
            "400": _problem("a bad body"),
            "401": _UNAUTHORIZED,
            "404": _NOT_FOUND,
            "409": _problem("nothing to do: no SKU qualifies, or the job has not finished"),
            "422": _problem("the child job's rows were refused; nothing stored"),
        },
    }


OPENAPI: dict[str, Any] = {
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
        "schemas": _SCHEMAS,
    },
    "paths": {
        "/healthz": {
            "get": {
                "summary": "Liveness and the database",
                "security": [],
                "responses": {
                    "200": {
                        "description": "up",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["status"],
                                    "properties": {"status": {"const": "ok"}},
                                }
                            }
                        },
                    },
                    "503": _problem("the database does not answer"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics: jobs and chunks by status, broker queue depth",
                "description": "No key needed, like /healthz: counts only. The workers serve"
                " their own counters on PROMOBULK_WORKER_METRICS_PORT.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "the Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "500": _problem("the database does not answer"),
                },
            }
        },
        "/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/v1/jobs": {
            "post": {
                "summary": "Submit a job: validated whole, stored all or nothing",
                "parameters": [
                    _query(name, schema, "with a CSV body") for name, schema in _CSV_QUERY.items()
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref("JobRequest")},
                        "text/csv": {
                            "schema": {
                                "type": "string",
                                "description": "header line_item_id,sku_id,action,bid_override"
                                "[,account_id]; the job's fields as query parameters"
                                " (options as JSON)",
                            }
                        },
                    },
                },
                "responses": {
                    "201": _ok("the job was stored", "Job", _LOCATION),
                    "200": _ok(
                        "the job stored earlier with this idempotency key", "Job", _LOCATION
                    ),
                    "400": _problem(
                        "bad rows (each with its row number) or fields; nothing stored"
                    ),
                    "401": _UNAUTHORIZED,
                    "413": _problem("the body is larger than PROMOBULK_API_MAX_BODY_BYTES"),
                    "415": _problem("neither application/json nor text/csv"),
                },
            },
            "get": {
                "summary": "Jobs, newest first",
                "parameters": [
                    _query(
                        "status",
                        {"type": "string", "enum": [s.value for s in JobStatus]},
                        "job status",
                    ),
                    _query("submitted_by", {"type": "string", "maxLength": 200}, "the key's name"),
                    _CURSOR,
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": MAX_JOBS_PAGE, "default": 50},
                        "page size",
                    ),
                ],
                "responses": {
                    "200": _ok("a page", "JobPage"),
                    "400": _problem("a bad filter or cursor"),
                    "401": _UNAUTHORIZED,
                },
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "A job: status, counts, completion ratio, times, ETA, failures",
                "parameters": [_JOB_ID],
                "responses": {
                    "200": _ok("the job", "Job"),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            }
        },
        "/v1/jobs/{job_id}/items": {
            "get": {
                "summary": "A job's SKUs and outcomes: JSON pages, or all of them as streamed CSV"
                " (Accept: text/csv or format=csv)",
                "parameters": [
                    _JOB_ID,
                    *_ITEM_FILTERS,
                    _CURSOR,
                    _query(
                        "limit",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_ITEMS_PAGE,
                            "default": 100,
                        },
                        "page size (JSON)",
                    ),
                    _query(
                        "format", {"type": "string", "enum": ["json", "csv"]}, "overrides Accept"
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "a JSON page, or the CSV export (input columns first, so"
                        " it can be fixed and submitted again)",
                        "content": {
                            "application/json": {"schema": _ref("ItemPage")},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "400": _problem("a bad filter or cursor"),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            }
        },
        "/v1/jobs/{job_id}/retry": {
            "post": _derived(
                "A child job of the failed SKUs, optionally of some error kinds only",
                "RetryRequest",
            )
        },
        "/v1/jobs/{job_id}/revert": {
            "post": _derived(
                "A child job restoring the recorded before-values of the SKUs the job changed",
                "RevertRequest",
            )
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel: chunks not started never run, running ones stop at their"
                " next call",
                "parameters": [_JOB_ID],
                "responses": {
                    "200": _ok("the job", "Job"),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            }
        },
    },
}
