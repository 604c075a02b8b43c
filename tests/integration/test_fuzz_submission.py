"""Property-based fuzz of both ways rows get in, against the real database: whatever bytes a CSV
holds and whatever a JSON body holds, a submission either stores a job whose rows are exactly
the input's rows, or is refused (naming rows that exist) and stores nothing. Nothing else: no
other exception, never half a job (issue 13)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.api.conftest import table_counts
from tests.jobs import make_jobs
from worker.domain.validation import text_problem
from worker.jobs.documents import JobFields
from worker.jobs.errors import Refused, SubmissionRejected
from worker.jobs.service import Jobs

COLUMNS = ["line_item_id", "sku_id", "action", "bid_override", "account_id"]
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)

# Values a careless or hostile producer writes: good ones, and every kind the rules refuse.
line_items = st.one_of(
    st.integers(1, 2**63 - 1).map(str),
    st.sampled_from(["0", "-1", "1.5", "1e3", "\u0661", " 7 ", "", str(2**63), "0x1f"]),
    st.text(max_size=8),
)
skus = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from(["a\x00b", "a\x07", "'=1+1", " pad ", "x" * 501, "sku-1", "sku-1 "]),
)
actions = st.one_of(
    st.sampled_from(["set_bid", "add", "remove", "pause", "unpause", "SET_BID", " add "]),
    st.text(max_size=8),
)
bids = st.one_of(
    st.decimals(0, 200, places=4, allow_nan=False).map(str),
    st.sampled_from(["", "0.50000", "-0", "1e2", "0,57", "NaN", "\u0661.5", "00.1", "1.23456"]),
    st.text(max_size=6),
)
accounts = st.one_of(
    st.sampled_from(["", "42", "0042", "acme", "\u0664", "-1"]),
    st.text(max_size=6),
)


def _quote(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\r\n') else cell


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A header (sometimes shuffled, short, doubled, or with other separators) and rows,
    sometimes with extra fields, as UTF-8 or as other bytes."""
    columns = draw(st.permutations(COLUMNS))
    columns = columns[: draw(st.integers(3, 5))]
    if draw(st.booleans()):
        columns = [*columns, draw(st.sampled_from(["outcome", "sku_id", "note"]))]
    separator = draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    values = {"line_item_id": line_items, "sku_id": skus, "action": actions}
    values |= {"bid_override": bids, "account_id": accounts}
    lines = [separator.join(columns)]
    for _ in range(draw(st.integers(0, 6))):
        cells = [draw(values.get(c, st.text(max_size=4))) for c in columns]
        cells += draw(st.lists(st.text(max_size=3), max_size=1))  # a decimal comma, say
        lines.append(separator.join(_quote(c) for c in cells))
    text = "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1"]))
    return text.encode(encoding, errors="replace")


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def json_bodies(draw: st.DrawFn) -> dict[str, Any]:
    items = []
    for _ in range(draw(st.integers(0, 5))):
        item = {
            "line_item_id": draw(st.one_of(st.integers(-1, 2**64), line_items, json_values)),
            "sku_id": draw(st.one_of(skus, st.integers(), json_values)),
            "action": draw(st.one_of(actions, json_values)),
            "bid_override": draw(st.one_of(bids, st.floats(), st.integers(), json_values)),
            "account_id": draw(st.one_of(accounts, st.integers(), json_values)),
        }
        items.append({k: v for k, v in item.items() if draw(st.booleans()) or k == "sku_id"})
    body: dict[str, Any] = {"items": draw(st.one_of(st.just(items), json_values))}
    fields = st.dictionaries(
        st.sampled_from(
            ["priority", "dry_run", "idempotency_key", "not_before", "options", "callback_url"]
        ),
        json_values,
        max_size=2,
    )
    body.update(draw(fields))
    return body


@pytest.fixture
def fuzz_jobs(engine: sa.Engine) -> Jobs:
    return make_jobs(engine)


def _stored(engine: sa.Engine, job_id: int) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "SELECT row_number, sku_id, coalesce(account_id, '') FROM items"
                    " WHERE job_id = :j ORDER BY row_number"
                ),
                {"j": job_id},
            )
        ]


def _judge(jobs: Jobs, engine: sa.Engine, before: tuple[int, ...], submit: Any) -> None:
    refused: Refused | None = None
    try:
        submitted = submit()
    except Refused as error:
        refused = error
    if refused is not None:
        assert table_counts(engine) == before
        errors = refused.errors if isinstance(refused, SubmissionRejected) else []
        assert all(e.row >= 0 and e.field for e in errors)
        assert all(text_problem(e.reason) is None for e in errors)
        return
    rows = _stored(engine, submitted.id)
    assert [r[0] for r in rows] == list(range(1, submitted.total + 1))
    assert all(
        text_problem(sku) is None and text_problem(account) is None for _, sku, account in rows
    )
    jobs.cancel(submitted.id)  # a queued chunk would hold its line item for later tests


@given(data=csv_files())
@FUZZ
def test_any_csv_is_stored_whole_or_refused_by_row(
    fuzz_jobs: Jobs, engine: sa.Engine, data: bytes
) -> None:
    before = table_counts(engine)
    _judge(fuzz_jobs, engine, before, lambda: fuzz_jobs.submit_csv(io.BytesIO(data), JobFields()))


@given(body=json_bodies())
@FUZZ
def test_any_json_body_is_stored_whole_or_refused_by_field(
    fuzz_jobs: Jobs, engine: sa.Engine, body: dict[str, Any]
) -> None:
    before = table_counts(engine)
    # Through the encoder and back, as the HTTP API receives it (lone surrogates included).
    decoded = json.loads(json.dumps(body))
    _judge(fuzz_jobs, engine, before, lambda: fuzz_jobs.submit_json(decoded))
