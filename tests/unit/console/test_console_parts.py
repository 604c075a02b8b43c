"""The console's pure parts: signed sessions and CSRF tokens, pasted rows, how a change and a
time are written."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from worker.console.forms import HEADER, job_list_filters, pasted_csv
from worker.console.render import bid, change, duration, when
from worker.console.sessions import Signer
from worker.domain.enums import Role
from worker.jobs.errors import InvalidQuery

SIGNER = Signer(b"k" * 32)


def test_a_session_reads_back_and_any_change_to_it_is_refused() -> None:
    session, cookie = SIGNER.new_session(7, "ops", Role.READ)
    assert SIGNER.session(cookie) == session
    body, _, mac = cookie.partition(".")
    assert SIGNER.session(body + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B")) is None
    assert SIGNER.session(body[:-1] + "." + mac) is None
    assert SIGNER.session("garbage") is None
    assert SIGNER.session("") is None
    assert Signer(b"j" * 32).session(cookie) is None  # another secret
    assert "ops" not in SIGNER.csrf_token(session.sid)


def test_a_session_ends_when_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    _, cookie = SIGNER.new_session(7, "ops", Role.OPERATE)
    later = time.time() + 13 * 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert SIGNER.session(cookie) is None


def test_csrf_tokens_belong_to_their_session_and_purpose() -> None:
    one, _ = SIGNER.new_session(1, "a", Role.SUBMIT)
    two, _ = SIGNER.new_session(1, "a", Role.SUBMIT)
    assert SIGNER.csrf_ok(one.sid, SIGNER.csrf_token(one.sid))
    assert not SIGNER.csrf_ok(two.sid, SIGNER.csrf_token(one.sid))
    assert not SIGNER.csrf_ok(one.sid, None)
    assert not SIGNER.csrf_ok(None, SIGNER.csrf_token(one.sid))
    pre = SIGNER.new_presession()
    sid = SIGNER.presession_id(pre)
    assert sid is not None
    assert SIGNER.session(pre) is None  # a pre-session is not a session
    with pytest.raises(ValueError, match="16 bytes"):
        Signer(b"short")


def test_pasted_rows_get_the_header_and_commas() -> None:
    assert pasted_csv("1,a,pause,\n") == f"{HEADER}\n1,a,pause,\n"
    assert pasted_csv("line_item_id,sku_id,action,bid_override\n1,a,pause,\n").startswith(
        "line_item_id,sku_id,action,bid_override\n1,a"
    )
    assert pasted_csv("1\ta,b\tset_bid\t0.5\r\n2\tc\tpause\t") == (
        f'{HEADER}\n1,"a,b",set_bid,0.5\n2,c,pause,\n'
    )


def test_job_list_dates_are_whole_days_in_the_viewers_zone() -> None:
    filters = job_list_filters({"from": "2026-12-01", "to": "2026-12-02", "tz": "60"})
    assert filters.arguments["created_after"] == datetime(2026, 11, 30, 23, tzinfo=UTC)
    assert filters.arguments["created_before"] == datetime(2026, 12, 2, 23, tzinfo=UTC)
    with pytest.raises(InvalidQuery, match="from"):
        job_list_filters({"from": "yesterday"})
    with pytest.raises(InvalidQuery, match="dry_run"):
        job_list_filters({"dry_run": "maybe"})


def test_changes_name_only_what_differs() -> None:
    assert change("1.12", "active", "0.8", "active") == "bid 1.12 → 0.80"
    assert change("0.5", "active", "0.5", "paused") == "active → paused"
    assert change(None, None, "0.35", "active") == "absent → active, bid 0.35"
    assert change("0.5", "paused", None, None) == "paused, bid 0.50 → absent"
    assert change(None, None, None, None) == "\u2013"
    assert bid(None) == "none"
    assert duration(3725) == "1 h 02 min"
    assert duration(65) == "1 min 05 s"
    assert duration(None) == "\u2013"


def test_times_are_utc_in_the_page_and_marked_for_the_viewers_zone() -> None:
    shown = when(datetime(2026, 12, 3, 10, 4, 5, tzinfo=UTC))
    assert shown == (
        '<time datetime="2026-12-03T10:04:05Z" title="2026-12-03 10:04:05 UTC">'
        "2026-12-03 10:04:05 UTC</time>"
    )
    assert "data-short" in when(datetime(2026, 12, 3, tzinfo=UTC), short=True)
    assert when(None, "<never>") == "&lt;never&gt;"
