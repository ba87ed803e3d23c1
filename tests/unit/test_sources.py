"""Each source's mapping of its own API format onto our Post, from templates in the sites' real field names."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import httpx
import pytest

from paktum_common.contracts import Post, Rating
from paktum_common.settings import Settings
from paktum_scraper.client import decode_body, retry_after
from paktum_scraper.run import Progress, parse_queries, summary
from paktum_scraper.scrape import QueryReport
from paktum_scraper.sources import (
    PageError,
    Skipped,
    SourceConfig,
    SourceConfigError,
    make_source,
    source_configs,
)
from tests.fixtures.booru.server import template

BASE = "https://booru.example"


def _source(api: str, user: str = "", key: str = "") -> Any:
    return make_source(SourceConfig(name=api, api=api, url=BASE, user=user, api_key=key))


def test_gelbooru_page_maps_every_field() -> None:
    item = template("gelbooru")
    page = _source("gelbooru").parse_page({"@attributes": {"limit": 100, "offset": 0, "count": 1}, "post": [item]})
    assert page.total == 1 and page.ids == [10950117] and not page.skipped
    [post] = page.posts
    assert post == Post(
        source="gelbooru",
        source_id="10950117",
        md5="8f7a2f0c1f59b4b0e5fb1b8bc1a7c5d2",
        file_url=item["file_url"],
        tags=["1girl", "cat_ears", "hug", "solo"],
        rating=Rating.general,
        page_url=f"{BASE}/index.php?page=post&s=view&id=10950117",
        width=1240,
        height=1754,
    )


def test_safebooru_bare_list_with_hash_and_numeric_directory_builds_the_file_url() -> None:
    item = template("safebooru")
    item["id"] = "5123456"  # some Gelbooru-compatible sites send ids as strings
    [post] = _source("gelbooru").parse_page([item]).posts
    assert post.md5 == item["hash"]
    assert post.file_url == f"{BASE}/images/4915/{item['image']}"
    assert post.rating is Rating.safe and post.source_id == "5123456"


@pytest.mark.parametrize(
    "body",
    [None, {"@attributes": {"limit": 100, "offset": 0, "count": 0}}, []],
    ids=["empty-body-0.2.0", "no-post-key-0.2.5", "empty-list"],
)
def test_gelbooru_no_results_in_each_spelling_is_an_empty_page(body: Any) -> None:
    page = _source("gelbooru").parse_page(body)
    assert page.posts == [] and page.ids == []


def test_gelbooru_lone_post_as_an_object_is_read() -> None:
    page = _source("gelbooru").parse_page({"@attributes": {"count": 1}, "post": template("gelbooru")})
    assert len(page.posts) == 1


def test_danbooru_post_and_hidden_post() -> None:
    visible = template("danbooru")
    hidden = dict(template("danbooru"), id=8341233)
    for key in ("md5", "file_url", "large_file_url", "preview_file_url"):
        del hidden[key]
    page = _source("danbooru").parse_page([visible, hidden])
    [post] = page.posts
    assert post.rating is Rating.general and post.width == 1240 and "original" in post.tags
    assert post.page_url == f"{BASE}/posts/8341234"
    assert page.skipped == [Skipped("8341233", "no_file_url", page.skipped[0].detail)]
    assert page.ids == [8341234, 8341233]


def test_moebooru_post_with_escaped_file_url_and_letter_rating() -> None:
    [post] = _source("moebooru").parse_page([template("moebooru")]).posts
    assert post.rating is Rating.safe and post.file_url.endswith(".png")
    assert post.page_url == f"{BASE}/post/show/1201234"


@pytest.mark.parametrize(
    ("api", "change", "reason"),
    [
        ("gelbooru", {"md5": ""}, "no_md5"),
        ("gelbooru", {"file_url": "", "image": None}, "no_file_url"),
        ("gelbooru", {"rating": "borderline"}, "unknown_rating"),
        ("gelbooru", {"md5": "not-a-hash"}, "malformed"),
        ("gelbooru", {"tags": 7}, "malformed"),
        ("danbooru", {"file_url": "https://cdn.donmai.us/original/5d/41/x.zip"}, "unsupported_file"),
        ("danbooru", {"rating": None}, "unknown_rating"),
        ("moebooru", {"status": "deleted"}, "deleted"),
        ("danbooru", {"file_url": "file:///etc/passwd.jpg"}, "unsafe_file_url"),
        ("moebooru", {"file_url": "ftp://files.example/a.png"}, "unsafe_file_url"),
    ],
    ids=[
        "no-md5",
        "no-file-url",
        "unknown-rating",
        "bad-md5",
        "tags-not-text",
        "ugoira-zip",
        "no-rating",
        "deleted",
        "file-url",
        "ftp-url",
    ],
)
def test_unusable_posts_are_skipped_with_a_reason(api: str, change: dict[str, Any], reason: str) -> None:
    item = dict(template(api), **change)
    page = _source(api).parse_page([item])
    assert page.posts == [] and [s.reason for s in page.skipped] == [reason] and page.ids


@pytest.mark.parametrize(
    ("api", "body", "message"),
    [
        ("gelbooru", "just text", "expected a JSON object or list"),
        ("gelbooru", {"error": "busy"}, "not a DAPI post list"),
        ("danbooru", {"success": False, "message": "timeout"}, "timeout"),
        ("danbooru", [{"md5": "x"}], "without a usable id"),
        ("moebooru", [17], "expected a post object"),
        ("gelbooru", {"post": "nope"}, "'post' is a str"),
    ],
    ids=["string", "wrong-object", "danbooru-error", "no-id", "not-objects", "post-not-list"],
)
def test_wrong_shapes_are_page_errors(api: str, body: Any, message: str) -> None:
    with pytest.raises(PageError, match=message):
        _source(api).parse_page(body)


@pytest.mark.parametrize(
    ("api", "before", "expected"),
    [
        ("gelbooru", None, {"tags": "hug solo", "pid": "0", "limit": "100", "json": "1"}),
        ("gelbooru", 500, {"tags": "hug solo id:<500"}),
        ("danbooru", None, {"tags": "hug solo", "page": "1", "limit": "200"}),
        ("danbooru", 500, {"tags": "hug solo", "page": "b500"}),
        ("moebooru", 500, {"tags": "hug solo id:<500", "page": "1"}),
    ],
    ids=["gelbooru-first", "gelbooru-below", "danbooru-first", "danbooru-below", "moebooru-below"],
)
def test_page_requests_page_by_id(api: str, before: int | None, expected: dict[str, str]) -> None:
    _, params = _source(api).page_request(["hug", "solo"], before)
    assert params.items() >= expected.items()


def test_credentials_are_sent_under_each_sites_names() -> None:
    assert (
        _source("gelbooru", "42", "k").page_request(["a"], None)[1].items() >= {"user_id": "42", "api_key": "k"}.items()
    )
    assert (
        _source("danbooru", "me", "k").page_request(["a"], None)[1].items() >= {"login": "me", "api_key": "k"}.items()
    )
    assert "api_key" not in _source("gelbooru").page_request(["a"], None)[1]


def test_auth_hint_names_the_missing_credentials() -> None:
    assert "user_id" in _source("gelbooru").auth_hint() and "PAKTUM_SCRAPE_SOURCES" in _source("gelbooru").auth_hint()
    assert "refused" in _source("danbooru", "me", "k").auth_hint()


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title>", "text/html", "HTML.*502 Bad Gateway"),
        (b'[{"id": 1,', "application/json", "malformed JSON"),
        (b'<?xml version="1.0"?><response success="false"/>', "text/xml", "HTML/XML"),
    ],
    ids=["html", "truncated-json", "xml"],
)
def test_bodies_that_are_not_json_are_page_errors(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(PageError, match=message):
        decode_body(httpx.Response(200, content=body, headers={"content-type": content_type}))


def test_empty_body_decodes_to_none() -> None:
    assert decode_body(httpx.Response(200, content=b"  \n")) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("9999", 300.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("soon", None), ("", None)],
    ids=["seconds", "capped", "past-date", "garbage", "absent"],
)
def test_retry_after(header: str, expected: float | None) -> None:
    headers = {"retry-after": header} if header else {}
    assert retry_after(httpx.Response(429, headers=headers), cap=300.0) == expected


def test_source_configs_merge_overrides_over_the_builtin_sites() -> None:
    raw = {"gelbooru": {"user": 42, "api_key": "k", "rate": 0.5}, "mybooru": {"api": "moebooru", "url": BASE}}
    configs = source_configs(Settings(scrape_sources=json.dumps(raw)))
    assert configs["gelbooru"].url == "https://gelbooru.com" and configs["gelbooru"].rate == 0.5
    assert (configs["gelbooru"].user, configs["gelbooru"].api_key) == ("42", "k")  # a user id written as a number
    assert configs["mybooru"].api == "moebooru" and configs["mybooru"].rate == 1.0  # PAKTUM_SCRAPE_RATE
    assert configs["safebooru"].api == "gelbooru" and not configs["safebooru"].has_credentials


# Malformed entries are refused by Settings itself (tests/unit/test_settings.py); these are well-formed
# entries that do not add up to a source the scraper can use.
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"x": {"api": "shimmie", "url": "https://x"}}, "source 'x': api must be one of"),
        ({"x": {"url": "https://x"}}, "source 'x': api must be one of"),
        ({"x": {"api": "danbooru"}}, "source 'x': url must be an http"),
        ({"local": {"api": "danbooru", "url": "https://x"}}, "source name 'local' is reserved"),
    ],
    ids=["unknown-api", "new-site-without-api", "new-site-without-url", "named-local"],
)
def test_unusable_sources_are_a_clear_error(raw: dict[str, dict[str, str]], message: str) -> None:
    with pytest.raises(SourceConfigError, match=message):
        source_configs(Settings(scrape_sources=raw))


def test_queries_one_per_line() -> None:
    assert parse_queries("hug\n\ncat_ears  solo\n# a comment\nrating:safe # trailing\n") == [
        ["hug"],
        ["cat_ears", "solo"],
        ["rating:safe"],
    ]


def test_summary_counts_skips_by_reason_and_errors() -> None:
    ok = QueryReport("gelbooru", "hug", found=5, published=3)
    ok.skipped.update({"banned_tag": 1, "already_indexed": 1})
    bad = QueryReport("gelbooru", "cat", error="gelbooru answered HTTP 401")
    lines = summary([ok, bad])
    assert lines[0] == "gelbooru 'hug': found 5, published 3, skipped 2 (already_indexed 1, banned_tag 1)"
    assert "ERROR: gelbooru answered HTTP 401" in lines[1]
    assert lines[-1] == "total: found 5, published 3, skipped 2 (already_indexed 1, banned_tag 1), errors 1"


def _screen(output: str) -> str:
    """What a terminal shows of `output`: colours and cursor controls dropped, each redraw overwriting the last."""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    return "\n".join(line.rsplit("\r", 1)[-1] for line in plain.split("\n"))


def test_progress_on_a_terminal_draws_a_bar_per_query_and_keeps_its_last_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    out = io.StringIO()
    progress = Progress(out, live=True)
    progress.page(QueryReport("gelbooru", "hug", found=20, published=20, pages=1, total=100))
    progress.page(QueryReport("gelbooru", "hug", found=50, published=40, pending=5, pages=2, total=100))
    progress.finish()
    progress.page(QueryReport("danbooru", "cat", found=7, published=7, pages=1))  # no total: a bar with no end
    progress.finish()
    hug, cat, end = _screen(out.getvalue()).split("\n")
    assert hug.startswith("gelbooru 'hug' ") and " 50/100 page 2, found 50, new 45, skipped 0 " in hug
    assert cat.startswith("danbooru 'cat' ") and " 7/? page 1, found 7, new 7, skipped 0 " in cat
    assert end == ""


def test_progress_off_a_terminal_logs_a_line_per_page(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    progress = Progress(out, live=False)
    with caplog.at_level(logging.INFO, logger="paktum.scraper"):
        progress.page(QueryReport("gelbooru", "hug", found=50, published=40, pending=5, pages=1, total=100))
        progress.finish()
    assert out.getvalue() == ""
    [record] = caplog.records
    assert record.getMessage() == "page read"
    assert (record.source, record.page, record.found, record.new) == ("gelbooru", 1, 50, 45)  # type: ignore[attr-defined]


def test_e621_nested_file_and_tags_by_category() -> None:
    visible = template("e621")
    blacklisted = template("e621")
    blacklisted["id"] = 4912344
    blacklisted["file"]["url"] = None  # hidden from anonymous users, md5 still given
    page = _source("e621").parse_page({"posts": [visible, blacklisted]})
    [post] = page.posts
    assert post.md5 == "9e107d9d372bb6826bd81d3542a419d6" and post.rating is Rating.safe
    assert post.tags == ["hug", "solo", "example_artist", "domestic_cat", "hi_res"]
    assert (post.width, post.height) == (1240, 1754) and post.page_url == f"{BASE}/posts/4912345"
    assert [(s.source_id, s.reason) for s in page.skipped] == [("4912344", "no_file_url")]


def test_e621_answer_without_the_posts_wrapper_is_a_page_error() -> None:
    with pytest.raises(PageError, match="posts"):
        _source("e621").parse_page([template("e621")])
