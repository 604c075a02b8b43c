"""Problems in Criteo's error envelope `{"errors": [...], "warnings": [...]}`."""

from __future__ import annotations

from typing import Any

Problem = dict[str, Any]


def problem(
    *,
    status: int,
    type_: str,
    code: str,
    title: str,
    detail: str,
    trace_id: str,
    instance: str,
    source: dict[str, str] | None = None,
) -> Problem:
    return {
        "traceId": trace_id,
        "type": type_,
        "code": code,
        "instance": instance,
        "title": title,
        "detail": detail,
        "source": source or {},
        "status": status,
    }


def envelope(errors: list[Problem] | None = None, warnings: list[Problem] | None = None) -> Problem:
    return {"warnings": warnings or [], "errors": errors or []}
