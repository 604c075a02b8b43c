"""Classification of answers and problems, and how a problem is tied to a SKU."""

from __future__ import annotations

from decimal import Decimal

import pytest

from worker.criteo.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    CriteoError,
    Forbidden,
    LineItemNotFound,
    PermanentError,
    RateLimited,
    RequestTimeout,
    RequestTooLarge,
    ServerError,
    TransientError,
    UnexpectedResponse,
    ValidationRejected,
    VersionGone,
    anonymous_tally,
    error_for_response,
    error_for_transport,
    one_problem_per_item,
    problem_kind,
)
from worker.criteo.models import parse_problem, parse_problems, parse_product
from worker.criteo.naming import SentSkus
from worker.criteo.transport import TransportConnectionError, TransportTimeout
from worker.domain.enums import ErrorKind
from worker.domain.isolation import Tally

SENT = SentSkus(["sku-0", "sku-1", "sku-2", "abc-1", "50"])


@pytest.mark.parametrize(
    ("status", "cls", "transient"),
    [
        (400, ValidationRejected, False),
        (401, AuthenticationFailed, False),
        (403, Forbidden, False),
        (404, LineItemNotFound, False),
        (408, RequestTimeout, True),
        (409, UnexpectedResponse, False),
        (410, VersionGone, False),
        (413, RequestTooLarge, False),
        (429, RateLimited, True),
        (500, ServerError, True),
        (502, ServerError, True),
        (503, ServerError, True),
        (504, ServerError, True),
    ],
)
def test_status_classification(status: int, cls: type[CriteoError], transient: bool) -> None:
    error = error_for_response("append", status, (), None)
    assert type(error) is cls
    assert isinstance(error, TransientError) is transient
    assert isinstance(error, PermanentError) is not transient
    assert error.status == status


@pytest.mark.parametrize("status", [200, 201, 204])
def test_success_is_not_an_error(status: int) -> None:
    assert error_for_response("get", status, (), None) is None


def test_per_sku_kinds() -> None:
    assert Forbidden("x").kind is ErrorKind.FORBIDDEN
    assert LineItemNotFound("x").kind is ErrorKind.LINE_ITEM_NOT_FOUND
    assert ValidationRejected("x").kind is ErrorKind.VALIDATION
    assert ServerError("x").kind is ErrorKind.TRANSIENT_EXHAUSTED
    assert VersionGone("x").kind is ErrorKind.API_ERROR
    assert AuthenticationFailed("x").kind is ErrorKind.API_ERROR


def test_transport_failures_are_transient() -> None:
    assert isinstance(error_for_transport("get", TransportTimeout("t")), RequestTimeout)
    failed = error_for_transport("get", TransportConnectionError("ServerDisconnectedError"))
    assert isinstance(failed, ConnectionFailed)
    assert failed.last_status is None


def test_message_names_codes_and_trace_but_not_detail() -> None:
    problem = parse_problem(
        {
            "type": "validation",
            "code": "bid-too-low",
            "title": "Bid below minimum",
            "detail": "SKU 'sku-1' private detail",
            "traceId": "t-1",
        },
        SENT,
    )
    error = error_for_response("append", 400, (problem,), "t-1")
    assert isinstance(error, ValidationRejected)
    assert str(error) == "append: HTTP 400 (bid-too-low: Bid below minimum) [trace t-1]"
    assert error.code == "bid-too-low"
    assert ServerError("x").code is None
    assert error.problems == (problem,)


def test_the_ids_cap_and_a_413_ask_for_smaller_requests() -> None:
    cap = parse_problem(
        {
            "type": "validation",
            "code": "exceeded-ids-cap",
            "title": "Requests are capped for 50 unique ids, 51 were provided",
            "source": {"ids": "data/attributes/ids"},
        },
        SENT,
    )
    assert (cap.whole_request, cap.sku_id, cap.count) == (True, None, None)  # never SKU `50`
    error = error_for_response("append", 400, (cap,), None)
    assert isinstance(error, RequestTooLarge)
    assert (error.ids_cap, error.body_bytes) == (50, None)
    too_large = error_for_response("append", 413, (), None, body_bytes=12345)
    assert isinstance(too_large, RequestTooLarge)
    assert (too_large.ids_cap, too_large.body_bytes) == (None, 12345)


def test_a_malformed_body_fails_the_request_not_its_skus() -> None:
    bad = parse_problem({"code": "invalid-request-body", "detail": "SKU 'sku-1'"}, SENT)
    assert bad.sku_id is None
    assert isinstance(error_for_response("append", 400, (bad,), None), UnexpectedResponse)


def _anonymous(code: str, detail: str) -> dict[str, str]:
    return {"type": "validation", "code": code, "title": "t", "detail": detail}


@pytest.mark.parametrize(
    ("details", "per_item", "tally"),
    [
        # One problem per code, the count opening each detail: exact.
        ([("a", "2 are bad"), ("b", "1 is bad")], False, Tally({"a": 2, "b": 1}, exact=True)),
        # One problem per refused item (a code comes twice): exact, numbers in them ignored.
        ([("a", "3 is bad"), ("a", "1 is bad"), ("b", "x")], False, Tally({"a": 2, "b": 1}, True)),
        # Neither: each code says "at least one".
        ([("a", "bad"), ("b", "bad")], False, Tally({"a": 1, "b": 1}, exact=False)),
        # ...unless this API was seen giving one problem per item before.
        ([("a", "bad"), ("b", "bad")], True, Tally({"a": 1, "b": 1}, exact=True)),
        ([], False, Tally({}, exact=False)),
    ],
)
def test_anonymous_tally(details: list[tuple[str, str]], per_item: bool, tally: Tally) -> None:
    named = {"code": "c", "source": {"id": "data/0/id"}}
    problems = parse_problems(
        {"errors": [named, *(_anonymous(c, d) for c, d in details)]}, "errors", SENT
    )
    assert anonymous_tally(problems, per_item=per_item) == tally
    assert one_problem_per_item(problems) is (len({c for c, _ in details}) < len(details))


def test_parse_problems_tolerates_odd_envelopes() -> None:
    assert parse_problems(None, "errors", SENT) == ()
    assert parse_problems({"errors": "nope"}, "errors", SENT) == ()
    body = {
        "errors": [
            {
                "type": "validation",
                "code": "c",
                "title": "t",
                "detail": "d",
                "status": "400",
                "source": {"id": "data/0/id"},
            },
            "junk",
        ]
    }
    (problem,) = parse_problems(body, "errors", SENT)
    assert problem.sku_id == "sku-0"
    assert problem.status == 400
    assert problem.trace_id is None
    assert problem_kind(problem) is ErrorKind.VALIDATION


def test_problem_kinds() -> None:
    def kind(type_: str) -> ErrorKind:
        return problem_kind(parse_problem({"type": type_}, SentSkus(())))

    assert kind("validation") is ErrorKind.VALIDATION
    assert kind("authorization") is ErrorKind.FORBIDDEN
    assert kind("availability") is ErrorKind.API_ERROR
    not_there = parse_problem(
        {"type": "validation", "code": "product-not-on-line-item"}, SentSkus(())
    )
    assert problem_kind(not_there) is ErrorKind.NOT_ON_LINE_ITEM


def test_parse_product_keeps_decimal_bids_and_known_statuses() -> None:
    product = parse_product(
        {"id": "s1", "attributes": {"id": "s1", "bidOverride": Decimal("1.10"), "status": "Paused"}}
    )
    assert (product.sku_id, product.bid_override, product.status) == (
        "s1",
        Decimal("1.10"),
        "paused",
    )
    odd = parse_product({"attributes": {"id": "s2", "bidOverride": None, "status": "archived"}})
    assert (odd.sku_id, odd.bid_override, odd.status) == ("s2", None, "unknown")
    whole = parse_product({"id": "s3", "attributes": {"bidOverride": 2}})
    assert whole.bid_override == Decimal(2)
