"""A secret is redacted in every spelling a URL or a form could give it (issue 13)."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import pytest

from worker.logs import REDACTED, Redactor

SECRET = "demo+secret/with=chars é"


@pytest.mark.parametrize(
    "spelling",
    [
        SECRET,
        quote(SECRET),  # `/` left as it is: quote's default
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        quote(SECRET, safe="").lower(),
        "demo%2bsecret%2Fwith=chars+%c3%A9",  # a mix of all of them
    ],
)
def test_every_percent_encoding_of_a_secret_is_redacted(spelling: str) -> None:
    assert Redactor([SECRET]).text(f"GET /hook?k={spelling}&x=1") == f"GET /hook?k={REDACTED}&x=1"


def test_text_that_only_resembles_a_secret_stays() -> None:
    redactor = Redactor([SECRET])
    assert redactor.text("demo+secret/with=chars") == "demo+secret/with=chars"
    assert Redactor(["abc"]).text("abc") == "abc"  # too short to replace safely
