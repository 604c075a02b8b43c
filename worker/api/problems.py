"""Errors as RFC 9457 problem details (`application/problem+json`), the only error format."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

from worker.jobs.documents import Problem as ProblemDocument
from worker.jobs.documents import RowProblem
from worker.jobs.errors import (
    Forbidden,
    IdempotencyConflict,
    InvalidField,
    JobNotFound,
    JobsError,
    NothingToDo,
    Refused,
    SubmissionRejected,
)

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
    document = ProblemDocument(
        type="about:blank", title=HTTPStatus(status).phrase, status=status, detail=detail, **extra
    )
    return web.Response(
        status=status,
        body=document.model_dump_json(exclude_none=True),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def rejected_rows(rejected: SubmissionRejected) -> dict[str, Any]:
    """Bad rows: every one named by its number (1 is the first data row or item; 0 the whole
    job), the first 100 listed, and how many there are in all."""
    return {
        "detail": f"the job was refused and nothing was stored: {rejected.total_errors} problem(s)",
        "total_errors": rejected.total_errors,
        "errors": [RowProblem(row=e.row, field=e.field, reason=e.reason) for e in rejected.errors],
    }


def for_error(error: JobsError) -> Problem:
    """What an operation refused on purpose, as the problem an HTTP client gets."""
    if isinstance(error, SubmissionRejected):
        return Problem(400, **rejected_rows(error))
    if isinstance(error, IdempotencyConflict):
        return Problem(409, str(error), job_id=error.job_id)
    if isinstance(error, InvalidField):
        return Problem(400, str(error), field=error.field)
    if isinstance(error, Refused):
        return Problem(400, str(error))
    if isinstance(error, Forbidden):
        return Problem(403, str(error))
    if isinstance(error, JobNotFound):
        return Problem(404, str(error))
    if isinstance(error, NothingToDo):
        return Problem(409, str(error))
    return Problem(400, str(error))
