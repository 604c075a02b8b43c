"""Everything a job operation raises on purpose, and what each interface makes of it::

JobsError
├── Refused                 bad input; nothing was stored       HTTP 400, exit 2
│   ├── SubmissionRejected  bad rows, each named by row and field
│   ├── InvalidField        one request field
│   ├── InvalidQuery        a filter, cursor or limit
│   └── IdempotencyConflict the key was used for another request HTTP 409
├── Forbidden               the caller's role does not allow it  HTTP 403
├── JobNotFound             no such job (or not the caller's)    HTTP 404, exit 5
└── NothingToDo             the operation would change nothing   HTTP 409, exit 6
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.domain.validation import RowError


class JobsError(Exception):
    """Base of the errors a job operation raises on purpose."""


class Refused(JobsError):
    """Bad input: nothing was stored."""


class SubmissionRejected(Refused):
    """`errors`: the first problems (at most ERROR_CAP); `total_errors`: all of them. Row 0 is
    the job as a whole (its header, its fields)."""

    def __init__(self, errors: Sequence[RowError], total_errors: int | None = None) -> None:
        self.errors = list(errors)
        self.total_errors = len(self.errors) if total_errors is None else total_errors
        shown = "; ".join(str(e) for e in self.errors[:5])
        more = f" (and {self.total_errors - 5} more)" if self.total_errors > 5 else ""
        super().__init__(f"job rejected, {self.total_errors} problem(s): {shown}{more}")


class InvalidField(Refused):
    """A request field that cannot be used."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidQuery(Refused):
    """A filter value, cursor or limit that cannot be used."""


class Forbidden(JobsError):
    """The caller's role does not allow this (a read key changes nothing)."""


class IdempotencyConflict(Refused):
    """The idempotency key names an earlier job made of another request."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            f"this idempotency key was used for a different request (job {job_id}): send that"
            " request again, or use a new key for this one"
        )
        self.job_id = job_id


class JobNotFound(JobsError, LookupError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job {job_id}")
        self.job_id = job_id


class NothingToDo(JobsError):
    """The operation would make an empty job, or cannot apply to the job as it is."""
