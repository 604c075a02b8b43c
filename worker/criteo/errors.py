"""The one place that decides what a failed call means.

Every exception the client raises, and how the runner should treat it::

    CriteoError
    ├── TransientError            the retry budget is spent; the chunk is parked, tried later, and
    │   │                         after the chunk's attempt cap its SKUs fail transient_exhausted
    │   ├── RateLimited           429, or the shared limiter would make us wait too long
    │   ├── ServerError           5xx
    │   ├── RequestTimeout        no complete answer within the request timeout
    │   ├── ConnectionFailed      refused, reset, a truncated body; or Redis (limiter and
    │   │                         token cache) unreachable
    │   └── TokenExpired          401 `authorization-token-expired` even for a freshly renewed
    │                             token (the API ending tokens early): renewed again next attempt
    └── PermanentError            retrying the same request cannot help
        ├── AuthenticationFailed  token endpoint refused, or another 401 after renewal -> api_error
        ├── Forbidden             403: every SKU of the chunk -> forbidden
        ├── LineItemNotFound      404: every SKU of the chunk -> line_item_not_found
        ├── VersionGone           410: the configured API version is dead -> api_error
        ├── ValidationRejected    400: each problem naming a SKU -> that SKU fails with its
        │                         `problem_kind`; the others' `tally` -> the runner finds them
        │                         by group testing (`worker.domain.isolation`)
        ├── RequestTooLarge       413, or 400 `exceeded-ids-cap`: the limit is learned (shared
        │                         by every process) and the runner sends the batch again, cut
        └── UnexpectedResponse    any other status, a body we cannot read, or a 400 about the
                                  request as a whole (`invalid-request-body`) -> api_error

A first 401 is not in the tree: the client renews the token once and resends. A 200 carrying
warnings is a success whose `WriteResult.warnings` the runner maps to SKUs (see `problem_kind`).
Messages hold statuses, codes and titles only: never a secret, a token or a request body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from worker.criteo.models import Problem
from worker.criteo.naming import ids_cap
from worker.criteo.transport import TransportError, TransportTimeout
from worker.domain.enums import ErrorKind
from worker.domain.isolation import Tally

if TYPE_CHECKING:
    from worker.criteo.learned import WriteLimits


class CriteoError(Exception):
    """Base of everything the client raises."""

    kind: ErrorKind = ErrorKind.API_ERROR

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problems: tuple[Problem, ...] = (),
        trace_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems
        self.trace_id = trace_id

    @property
    def code(self) -> str | None:
        """The API's code for the failure (its first problem's), for the item's record."""
        return next((p.code for p in self.problems if p.code), None)


class TransientError(CriteoError):
    """Worth trying again later; raised only once the client's own retries are spent."""

    kind = ErrorKind.TRANSIENT_EXHAUSTED

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problems: tuple[Problem, ...] = (),
        trace_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, problems=problems, trace_id=trace_id)
        self.attempts = 1
        self.last_status = status
        self.retry_after = retry_after
        """Seconds before the API is expected to accept us again, when known (a parking hint)."""
        self.exhausted = False
        """Set by the retry policy when it gives up, so an outer retry loop does not start over."""


class RateLimited(TransientError):
    pass


class ServerError(TransientError):
    pass


class RequestTimeout(TransientError):
    pass


class ConnectionFailed(TransientError):
    pass


class TokenExpired(TransientError):
    pass


class PermanentError(CriteoError):
    """The same request will fail the same way; record it, do not retry."""


class AuthenticationFailed(PermanentError):
    pass


class Forbidden(PermanentError):
    kind = ErrorKind.FORBIDDEN


class LineItemNotFound(PermanentError):
    kind = ErrorKind.LINE_ITEM_NOT_FOUND


class VersionGone(PermanentError):
    pass


class ValidationRejected(PermanentError):
    kind = ErrorKind.VALIDATION

    per_item = False
    """Set by the client when this API was seen giving one problem per refused item."""

    def tally(self) -> Tally:
        """What the problems naming no SKU say about the rest (see `anonymous_tally`)."""
        return anonymous_tally(self.problems, per_item=self.per_item)


class RequestTooLarge(PermanentError):
    """The request carried more than the API takes: more ids than its cap, or too many bytes."""

    ids_cap: int | None = None
    """The N of "capped for N unique ids" (None: not the ids cap, 0: unreadable)."""
    body_bytes: int | None = None
    """The size of the body a 413 refused."""
    limits: WriteLimits | None = None
    """The limits learned from this refusal, set by the client before it is raised."""


class UnexpectedResponse(PermanentError):
    pass


TOKEN_EXPIRED_CODE = "authorization-token-expired"  # noqa: S105 - an error code, not a secret

_BY_STATUS: dict[int, type[CriteoError]] = {
    400: ValidationRejected,
    401: AuthenticationFailed,
    403: Forbidden,
    404: LineItemNotFound,
    408: RequestTimeout,
    410: VersionGone,
    413: RequestTooLarge,
    429: RateLimited,
}


def error_for_response(
    endpoint: str,
    status: int,
    problems: tuple[Problem, ...],
    trace_id: str | None,
    *,
    body_bytes: int | None = None,
) -> CriteoError | None:
    """The exception for an HTTP answer, or None when it is a success. `body_bytes` is the
    size of the request's body (what a 413 refused)."""
    if 200 <= status < 300:
        return None
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else UnexpectedResponse
    if status == 401 and any(p.code == TOKEN_EXPIRED_CODE for p in problems):
        cls = TokenExpired
    cap = next((c for p in problems if (c := _ids_cap(p)) is not None), None)
    whole = [p for p in problems if p.whole_request]
    if status == 400 and cap is not None:
        cls = RequestTooLarge
    elif status == 400 and whole:
        cls = UnexpectedResponse
    summary = "; ".join(f"{p.code or p.type}: {p.title}" for p in problems[:3])
    message = f"{endpoint}: HTTP {status}" + (f" ({summary})" if summary else "")
    if len(problems) > 3:
        message += f" and {len(problems) - 3} more problems"
    if trace_id:
        message += f" [trace {trace_id}]"
    error = cls(message, status=status, problems=problems, trace_id=trace_id)
    if isinstance(error, RequestTooLarge):
        error.ids_cap = cap
        error.body_bytes = body_bytes if status == 413 else None
    return error


def _ids_cap(problem: Problem) -> int | None:
    if not problem.whole_request:
        return None
    return ids_cap({"code": problem.code, "title": problem.title, "detail": problem.detail})


def one_problem_per_item(problems: tuple[Problem, ...]) -> bool:
    """A code repeated among problems naming no SKU: this API reports each refused item apart."""
    anonymous = _anonymous(problems)
    return len({p.code for p in anonymous}) < len(anonymous)


def _anonymous(problems: tuple[Problem, ...]) -> list[Problem]:
    return [p for p in problems if not p.sku_id and not p.whole_request]


def anonymous_tally(problems: tuple[Problem, ...], *, per_item: bool = False) -> Tally:
    """How many refused items the problems that name no SKU stand for, per code.

    Exact when the API shows one problem per refused item (a code comes twice, or `per_item`
    was learned from an earlier answer) or when every such problem opens with its count;
    otherwise each code counts once, as a lower bound."""
    anonymous = _anonymous(problems)
    entries: dict[str, int] = {}
    numbers: dict[str, int] = {}
    for p in anonymous:
        entries[p.code] = entries.get(p.code, 0) + 1
        numbers[p.code] = numbers.get(p.code, 0) + (p.count or 1)
    if per_item or one_problem_per_item(problems):
        return Tally(entries, exact=True)
    if anonymous and all(p.count is not None for p in anonymous):
        return Tally(numbers, exact=True)
    return Tally(entries, exact=False)


def error_for_transport(endpoint: str, failure: TransportError) -> TransientError:
    """A request that got no HTTP answer is always transient."""
    if isinstance(failure, TransportTimeout):
        return RequestTimeout(f"{endpoint}: no answer within the request timeout")
    return ConnectionFailed(f"{endpoint}: connection failed ({failure})")


_KIND_BY_CODE = {"product-not-on-line-item": ErrorKind.NOT_ON_LINE_ITEM}


def error_for_redis(endpoint: str, failure: RedisError) -> TransientError:
    """Without the shared limiter and token no call may go out; Redis comes back, so wait."""
    return ConnectionFailed(f"{endpoint}: Redis unavailable ({type(failure).__name__})")


def problem_kind(problem: Problem) -> ErrorKind:
    """The per-SKU error kind of a problem that names a SKU (in a 400 or a 200's warnings).

    Criteo publishes no per-SKU codes; the few we know are mapped, the rest go by `type`.
    """
    if problem.code in _KIND_BY_CODE:
        return _KIND_BY_CODE[problem.code]
    if problem.type in ("authorization", "access-control"):
        return ErrorKind.FORBIDDEN
    if problem.type in ("validation", "unknown", ""):
        return ErrorKind.VALIDATION
    return ErrorKind.API_ERROR
