"""The scraper against fixture boorus on loopback: scrape, publish, hash, index, search, and the ways sites fail."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from paktum_common.contracts import Post, Rating
from paktum_common.keys import BANNED_MD5
from paktum_common.search import parse_query
from paktum_common.settings import Settings
from paktum_scraper.cursors import Cursors
from paktum_scraper.ratelimit import RateLimiter
from paktum_scraper.run import exit_code, scrape
from tests.fixtures.booru.server import HTML_ERROR, PASS, Fault, FixtureBooru, fixture_posts
from tests.integration.pipeline import Pipeline
from tests.integration.scrape_settings import sources_env, with_sources

BIN = Path(sys.executable).parent


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The hasher must reach the fixture booru on loopback; retries wait milliseconds, not seconds."""
    return settings.model_copy(
        update={"download_allow_private": True, "scrape_rate": 50.0, "scrape_backoff_seconds": 0.05}
    )


@pytest.fixture
def booru() -> Iterator[Callable[..., FixtureBooru]]:
    started: list[FixtureBooru] = []

    def start(api: str = "gelbooru", **options: object) -> FixtureBooru:
        server = FixtureBooru(api, **options).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def using(settings: Settings, server: FixtureBooru, name: str = "gelbooru", **entry: object) -> Settings:
    api = "gelbooru" if server.api == "safebooru" else server.api
    sources = {name: {"api": api, "url": server.url, **entry}}
    return with_sources(settings, sources)


async def test_a_gelbooru_query_is_scraped_to_the_end_then_hashed_indexed_and_searchable(
    settings: Settings, booru: Callable[..., FixtureBooru], pipeline: Pipeline, redis_client: Redis
) -> None:
    server = booru("gelbooru", max_limit=10)  # gelbooru.com caps at 100; 10 makes three pages of 25 posts
    hugs = fixture_posts(1000, 25, ["hug", "1girl"], "general")
    banned = fixture_posts(2000, 1, ["hug", "forbidden_tag"], "sensitive")
    mismatch = fixture_posts(3000, 1, ["hug"], "questionable")
    mismatch[0].stated_md5 = "0" * 32
    other = fixture_posts(4000, 2, ["cat"], "explicit")
    server.add(*hugs, *banned, *mismatch, *other)
    settings = using(settings.model_copy(update={"banned_tags": ["forbidden_tag"]}), server)

    pages_before = _metric("paktum_scraper_pages_total", source="gelbooru")
    banned_before = _metric("paktum_scraper_skipped_total", source="gelbooru", reason="banned_tag")
    [report] = await scrape(settings, ["gelbooru"], [["hug"]])
    assert (report.found, report.published, dict(report.skipped)) == (27, 26, {"banned_tag": 1})
    assert _metric("paktum_scraper_pages_total", source="gelbooru") - pages_before == 4
    assert _metric("paktum_scraper_skipped_total", source="gelbooru", reason="banned_tag") - banned_before == 1
    assert report.complete and not report.error and report.total == 27
    calls = server.api_requests()
    assert len(calls) == 4  # three pages, then an empty one says the query is done
    assert [c.params["tags"] for c in calls[1:]] == ["hug id:<1017", "hug id:<1007", "hug id:<1000"]
    assert all(c.headers["User-Agent"].startswith("Paktum/") for c in calls)

    await pipeline.drain()
    page = await pipeline.search.search(parse_query("hug"), 50)
    assert page.total == 25
    by_id = {hit.SourceID: hit for hit in page.hits}
    for post in hugs:
        hit = by_id[str(post.id)]
        assert post.real_md5 == hit.ID and hit.Source == "gelbooru" and hit.Rating is Rating.general
        assert hit.SourceURL.endswith(f"index.php?page=post&s=view&id={post.id}")
        assert pipeline.store.image_path(hit.Filename).read_bytes() == post.file
    dead = await redis_client.xrange(settings.dead_letter_stream)
    assert [(Post.from_stream(f).source_id, "md5 mismatch" in f["reason"]) for _, f in dead] == [("3000", True)]

    again = await scrape(settings, ["gelbooru"], [["hug"]])
    assert (again[0].found, again[0].published) == (0, 0)
    assert len(server.api_requests()) == 5  # one page: it already reaches the cursor


@pytest.mark.parametrize(
    ("api", "rating", "expected"),
    [
        ("gelbooru", "sensitive", Rating.safe),
        ("safebooru", "safe", Rating.safe),
        ("danbooru", "q", Rating.questionable),
        ("moebooru", "e", Rating.explicit),
        ("e621", "q", Rating.questionable),
    ],
)
async def test_each_api_format_goes_the_whole_way(
    settings: Settings,
    booru: Callable[..., FixtureBooru],
    pipeline: Pipeline,
    api: str,
    rating: str,
    expected: Rating,
) -> None:
    server = booru(api, max_limit=4, string_ids=api == "safebooru")
    posts = fixture_posts(500, 9, ["cat_ears", "solo"], rating, seed=hash(api) % 97)
    posts[3].hidden = api in ("danbooru", "e621")  # the account may not see the file
    server.add(*posts)
    settings = using(settings, server, name=api)

    [report] = await scrape(settings, [api], [["cat_ears", "solo"]])
    hidden = 1 if api in ("danbooru", "e621") else 0
    assert (report.found, report.published) == (9, 9 - hidden)
    assert dict(report.skipped) == ({"no_file_url": 1} if hidden else {})
    await pipeline.drain()
    page = await pipeline.search.search(parse_query("cat_ears"), 50)
    assert page.total == 9 - hidden
    assert {hit.Rating for hit in page.hits} == {expected}
    assert {hit.ID for hit in page.hits} == {p.real_md5 for p in posts if not p.hidden}


async def test_a_rerun_fetches_only_newer_posts_and_full_rescrapes_everything(
    settings: Settings, booru: Callable[..., FixtureBooru], pipeline: Pipeline, redis_client: Redis
) -> None:
    server = booru("danbooru", max_limit=5)
    server.add(*fixture_posts(100, 6, ["hug"], "g"))
    settings = using(settings, server, name="danbooru")
    [first] = await scrape(settings, ["danbooru"], [["hug"]])
    assert first.published == 6
    assert await Cursors(redis_client).newest("danbooru", ["hug"]) == 105
    await pipeline.drain()

    server.add(*fixture_posts(200, 3, ["hug"], "s", seed=1))
    requests_before = len(server.api_requests())
    [second] = await scrape(settings, ["danbooru"], [["hug"]])
    assert (second.found, second.published) == (3, 3)
    assert len(server.api_requests()) - requests_before == 1
    assert await Cursors(redis_client).newest("danbooru", ["hug"]) == 202
    await pipeline.drain()

    [full] = await scrape(settings, ["danbooru"], [["hug"]], full=True)
    assert (full.found, full.published, dict(full.skipped)) == (9, 0, {"already_indexed": 9})


async def test_max_posts_bounds_a_run_without_moving_the_cursor_so_the_next_run_goes_deeper(
    settings: Settings, booru: Callable[..., FixtureBooru], pipeline: Pipeline, redis_client: Redis
) -> None:
    server = booru("gelbooru", max_limit=4)
    posts = fixture_posts(10, 10, ["hug"], "general")
    server.add(*posts)
    settings = using(settings, server)
    [first] = await scrape(settings, ["gelbooru"], [["hug"]], max_posts=5)
    assert (first.published, dict(first.skipped), first.complete) == (5, {"max_posts": 3}, False)
    assert await Cursors(redis_client).newest("gelbooru", ["hug"]) is None
    await pipeline.drain()
    [second] = await scrape(settings, ["gelbooru"], [["hug"]], max_posts=5)
    assert second.published == 5 and second.skipped["already_indexed"] == 5
    await pipeline.drain()
    assert (await pipeline.search.search(parse_query("hug"), 50)).total == 10


async def test_banned_md5s_are_not_published(
    settings: Settings, booru: Callable[..., FixtureBooru], redis_client: Redis
) -> None:
    server = booru("moebooru")
    posts = fixture_posts(1, 3, ["hug"], "s")
    server.add(*posts)
    await redis_client.sadd(BANNED_MD5, posts[1].real_md5)
    [report] = await scrape(using(settings, server, name="yandere"), ["yandere"], [["hug"]])
    assert (report.published, dict(report.skipped)) == (2, {"banned_md5": 1})
    published = [Post.from_stream(f).md5 for _, f in await redis_client.xrange(settings.stream)]
    assert posts[1].real_md5 not in published and len(published) == 2


async def test_429_with_retry_after_slows_the_scraper_down_and_it_still_finishes(
    settings: Settings, booru: Callable[..., FixtureBooru]
) -> None:
    server = booru("gelbooru")
    server.add(*fixture_posts(1, 3, ["hug"], "general"))
    server.fail_next("api", Fault(429, b"Too Many Requests", "text/plain", {"Retry-After": "1"}))
    before = _metric("paktum_scraper_http_errors_total", source="gelbooru", status="429")
    [report] = await scrape(using(settings, server), ["gelbooru"], [["hug"]])
    assert report.published == 3 and not report.error
    refused, retried = server.api_requests()[:2]
    assert retried.at - refused.at >= 1.0
    assert _metric("paktum_scraper_http_errors_total", source="gelbooru", status="429") - before == 1


async def test_a_429_holds_off_every_process_sharing_the_source(settings: Settings, redis_client: Redis) -> None:
    other_process = RateLimiter(redis_client, "gelbooru", rate=1000)
    await RateLimiter(redis_client, "gelbooru", rate=1000).hold_off(0.6)
    assert await other_process.acquire() >= 0.5


async def test_server_errors_are_retried_until_the_page_comes(
    settings: Settings, booru: Callable[..., FixtureBooru]
) -> None:
    server = booru("danbooru", max_limit=2)
    server.add(*fixture_posts(1, 4, ["hug"], "g"))
    server.fail_next("api", PASS, Fault(500, b"<html><title>500</title></html>"), Fault(503, b""))
    before = _metric("paktum_scraper_http_errors_total", source="danbooru", status="500")
    [report] = await scrape(using(settings, server, name="danbooru"), ["danbooru"], [["hug"]])
    assert (report.published, report.error) == (4, "")
    assert _metric("paktum_scraper_http_errors_total", source="danbooru", status="500") - before == 1


@pytest.mark.parametrize(
    "fault",
    [HTML_ERROR, Fault(200, b'{"@attributes": {"limit": 100, "offset": 0, "count": 4}, "post": [{"id": 4, "md5"', "")],
    ids=["html-error-page", "malformed-json"],
)
async def test_an_unreadable_page_fails_its_query_only(
    settings: Settings, booru: Callable[..., FixtureBooru], redis_client: Redis, fault: Fault
) -> None:
    server = booru("gelbooru", max_limit=2)
    server.add(*fixture_posts(1, 4, ["hug"], "general"), *fixture_posts(10, 2, ["cat"], "general", seed=2))
    settings = using(settings.model_copy(update={"scrape_retries": 1}), server)
    server.fail_next("api", PASS, fault, fault)  # the second page of "hug", and its one retry
    reports = await scrape(settings, ["gelbooru"], [["hug"], ["cat"]])
    hug, cat = reports
    assert hug.published == 2 and "failed 2 times" in hug.error
    assert ("HTML" in hug.error) if fault is HTML_ERROR else ("malformed JSON" in hug.error)
    assert (cat.published, cat.error) == (2, "")
    assert exit_code(reports) == 1
    assert await Cursors(redis_client).newest("gelbooru", ["hug"]) is None  # the next run tries again


async def test_401_names_the_credentials_gelbooru_needs(settings: Settings, booru: Callable[..., FixtureBooru]) -> None:
    server = booru("gelbooru", credentials=("42", "secret"))
    server.add(*fixture_posts(1, 2, ["hug"], "general"))
    [refused] = await scrape(using(settings, server), ["gelbooru"], [["hug"]])
    assert "HTTP 401" in refused.error and "user_id" in refused.error and "api_key" in refused.error
    assert len(server.api_requests()) == 1  # not retried: waiting does not make credentials appear
    [ok] = await scrape(using(settings, server, user="42", api_key="secret"), ["gelbooru"], [["hug"]])
    assert ok.published == 2


async def test_danbooru_tag_limit_is_a_clear_query_error(
    settings: Settings, booru: Callable[..., FixtureBooru]
) -> None:
    server = booru("danbooru")
    [report] = await scrape(using(settings, server, name="danbooru"), ["danbooru"], [["a", "b", "c"]])
    assert "HTTP 422" in report.error and "more than 2 tags" in report.error


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAKTUM_")}
    env.update(
        PAKTUM_REDIS_URL=str(settings.redis_url),
        PAKTUM_DATA_DIR=str(settings.data_dir),
        PAKTUM_SCRAPE_SOURCES=sources_env(settings),
        PAKTUM_SCRAPE_RATE=str(settings.scrape_rate),
        PAKTUM_LOG_LEVEL="WARNING",
        **extra,
    )
    return env


async def test_paktum_scrape_from_stdin_fills_the_index_and_a_second_run_publishes_nothing(
    settings: Settings, booru: Callable[..., FixtureBooru], pipeline: Pipeline
) -> None:
    server = booru("gelbooru")
    server.add(*fixture_posts(1, 6, ["hug"], "general"), *fixture_posts(50, 2, ["cat_ears", "solo"], "sensitive"))
    env = _env(using(settings, server))
    run = subprocess.run(
        [BIN / "paktum", "scrape"], input="hug\ncat_ears solo\n", env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert "gelbooru 'hug': found 6, published 6" in run.stdout
    assert "total: found 8, published 8, skipped 0, errors 0" in run.stdout
    await pipeline.drain()
    assert (await pipeline.search.search(parse_query(""), 50)).total == 8

    again = subprocess.run(
        [BIN / "paktum", "scrape", "hug", "cat_ears solo", "--source", "gelbooru"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "total: found 0, published 0" in again.stdout


async def test_paktum_scrape_exits_non_zero_when_a_source_fails(
    settings: Settings, booru: Callable[..., FixtureBooru]
) -> None:
    server = booru("gelbooru", credentials=("42", "secret"))
    run = subprocess.run(
        [BIN / "paktum", "scrape", "hug"], env=_env(using(settings, server)), capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert "ERROR: gelbooru answered HTTP 401" in run.stdout and "errors 1" in run.stdout


async def test_two_scraper_processes_share_one_rate_limit(
    settings: Settings, booru: Callable[..., FixtureBooru], redis_client: Redis
) -> None:
    rate = 5.0  # one request every 0.2 s for both processes together
    server = booru("gelbooru", max_limit=1)
    server.add(*fixture_posts(1, 5, ["alpha"], "general"), *fixture_posts(100, 5, ["beta"], "general", seed=3))
    settings = using(settings, server).model_copy(update={"scrape_rate": rate})
    # Hold the budget a moment (as a 429 would) so both processes are up and waiting before the first request:
    # long enough for two interpreters to start on a loaded machine (at 2.5 s, one started too late beside a
    # parallel test run and a benchmark, and the two did not overlap).
    hold = 5.0
    start = time.time()
    await RateLimiter(redis_client, "gelbooru", rate).hold_off(hold)
    procs = [
        subprocess.Popen(
            [BIN / "paktum-scraper"],
            env=_env(settings, PAKTUM_SCRAPE_QUERIES=query),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for query in ("alpha", "beta")
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        assert "published 5" in out
    calls = sorted(server.api_requests(), key=lambda r: r.at)
    assert len(calls) == 12  # 5 pages of one post and an empty page, per query
    alpha = [c.at for c in calls if c.params["tags"].startswith("alpha")]
    beta = [c.at for c in calls if c.params["tags"].startswith("beta")]
    assert max(alpha[0], beta[0]) < min(alpha[-1], beta[-1]), "the two processes did not run at the same time"
    interval = 1 / rate
    for k, call in enumerate(calls):
        # The k-th request of the two cannot come before the k-th slot; load can only make it later.
        assert call.at >= start + hold + k * interval - 0.05, f"request {k} came {call.at - start:.2f}s after start"


async def test_a_site_that_ignores_the_id_bound_is_an_error_not_an_endless_loop(
    settings: Settings, booru: Callable[..., FixtureBooru]
) -> None:
    server = booru("gelbooru", max_limit=2, ignores_id_bound=True)
    server.add(*fixture_posts(1, 5, ["hug"], "general"))
    [report] = await scrape(using(settings, server), ["gelbooru"], [["hug"]])
    assert report.published == 2 and "ignored the id bound" in report.error
    assert len(server.api_requests()) == 2


async def test_a_query_that_sorts_is_refused_before_any_request(
    settings: Settings, booru: Callable[..., FixtureBooru]
) -> None:
    server = booru("gelbooru")
    [report] = await scrape(using(settings, server), ["gelbooru"], [["hug", "sort:score"]])
    assert "sort:score" in report.error and "newest-first" in report.error
    assert server.api_requests() == []


async def test_a_page_that_times_out_is_retried(settings: Settings, booru: Callable[..., FixtureBooru]) -> None:
    server = booru("moebooru")
    server.add(*fixture_posts(1, 3, ["hug"], "s"))
    server.fail_next("api", Fault(status=0, delay=2.0))  # answers, but long after the client gave up
    before = _metric("paktum_scraper_http_errors_total", source="yandere", status="timeout")
    quick = using(settings.model_copy(update={"scrape_timeout_seconds": 0.5}), server, name="yandere")
    [report] = await scrape(quick, ["yandere"], [["hug"]])
    assert (report.published, report.error) == (3, "")
    assert _metric("paktum_scraper_http_errors_total", source="yandere", status="timeout") - before == 1


async def test_cursors_only_move_forward_and_one_query_has_one_spelling(redis_client: Redis) -> None:
    cursors = Cursors(redis_client)
    assert await cursors.advance("gelbooru", ["solo", "cat_ears"], 200)
    assert not await cursors.advance("gelbooru", ["cat_ears", "solo"], 150)
    assert await cursors.newest("gelbooru", ["cat_ears", "solo", "solo"]) == 200
    assert await cursors.newest("danbooru", ["cat_ears", "solo"]) is None


async def test_429s_do_not_use_up_the_retry_budget_for_failures(
    settings: Settings, booru: Callable[..., FixtureBooru]
) -> None:
    server = booru("gelbooru")
    server.add(*fixture_posts(1, 2, ["hug"], "general"))
    throttle = Fault(429, b"", "text/plain", {"Retry-After": "0"})
    server.fail_next("api", throttle, throttle, throttle, throttle)
    one_retry = using(settings.model_copy(update={"scrape_retries": 1}), server)
    [report] = await scrape(one_retry, ["gelbooru"], [["hug"]])
    assert (report.published, report.error) == (2, "")
    assert len(server.api_requests()) == 6  # four 429s, the page, the empty page
