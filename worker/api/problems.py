"""Errors as RFC 9457 problem details (`application/problem+json`), the only error format."""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from aiohttp import web

from worker.domain.validation import RowError

PROBLEM_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise from a handler to answer with a problem document."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    body.update(detail=detail, **extra)
    return web.Response(
        status=status, text=json.dumps(body), content_type=PROBLEM_TYPE, headers=headers
    )


def rejected_rows(errors: Sequence[RowError], total: int) -> Problem:
    """Bad rows: every one named by its number (1 is the first data row or item; 0 the whole
    job), the first 100 listed, and how many there are in all."""
    return Problem(
        400,
        f"the job was refused and nothing was stored: {total} problem(s)",
        total_errors=total,
        errors=[{"row": e.row, "field": e.field, "reason": e.reason} for e in errors],
    )
