"""Private mode's signing: links and sessions under one key, kept apart; expiries; where a sign-in may return to."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from paktum_api.access import ReadAccess, safe_next
from paktum_common.settings import Settings


def access(*tokens: str, seconds: int = 3600) -> ReadAccess:
    made = ReadAccess.from_settings(Settings(read_token=[SecretStr(t) for t in tokens], read_link_seconds=seconds))
    assert made is not None
    return made


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/", "/"),
        ("/#/search/cat%20dog", "/#/search/cat%20dog"),
        ("/docs?x=1", "/docs?x=1"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/\r\nSet-Cookie: x=1", "/"),
    ],
    ids=["root", "hash", "query", "none", "empty", "absolute", "scheme-relative", "backslash", "script", "crlf"],
)
def test_a_sign_in_returns_only_to_a_path_of_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_link_expiries_are_rounded_so_links_stay_the_same_for_a_while() -> None:
    reader = access("t0ken", seconds=3600)
    first = reader.link_expiry(now=1_000_000)
    assert first >= 1_000_000 + 3600 and first % 900 == 0
    assert reader.link_expiry(now=first - 3600) == first  # the same link until the next quarter
    assert reader.link_expiry(now=first - 3600 + 1) == first + 900


def test_links_and_sessions_cannot_pass_for_each_other_or_for_another_token_list() -> None:
    reader = access("one", "two")
    assert access("two", "one").key == reader.key  # the order of the list does not matter
    assert access("one").key != reader.key
    link = reader.sign_link("/images/a.jpg", expires=4_000_000_000)
    exp, sig = link.split("exp=")[1].split("&sig=")
    assert reader.link_problem("/images/a.jpg", {"exp": exp, "sig": sig}) is None
    assert not reader.session_valid(f"{exp}.{sig}")  # a link's signature is no session
    session = reader.new_session()
    assert reader.session_valid(session) and not access("one").session_valid(session)
    s_exp, _, s_sig = session.partition(".")
    assert reader.link_problem("/images/a.jpg", {"exp": s_exp, "sig": s_sig}) is not None
    for bad in ("", ".", "abc.def", "99999999999999.x", f"{exp}.{sig}x"):
        assert not reader.session_valid(bad)
