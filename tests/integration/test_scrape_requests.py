"""The api's startScrape carried out by `paktum-scraper --serve-requests`: over real HTTP into the index,
malformed requests acknowledged with their reason, and a request a dead or stopped consumer left pending."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.settings import Settings
from paktum_scraper.scrape_requests import RequestServer
from tests.fixtures.booru.server import Fault, FixtureBooru, fixture_posts
from tests.integration.apiserver import serve
from tests.integration.pipeline import Pipeline
from tests.integration.scrape_settings import sources_env, with_sources

BIN = Path(sys.executable).parent
TOKEN = "scrape-admin-token"


@pytest.fixture
def settings(settings: Settings, booru: FixtureBooru) -> Settings:
    """The fixture booru as the default source; the hasher may download from loopback."""
    settings = settings.model_copy(update={"download_allow_private": True, "admin_token": SecretStr(TOKEN)})
    return with_sources(settings, {"gelbooru": {"url": booru.url, "rate": 50}})


def start_scrape(api: httpx.Client, queries: list[str], source: str | None = None) -> str:
    response = api.post(
        "/query",
        json={
            "query": "mutation($q: [String!]!, $s: String) { startScrape(queries: $q, source: $s) }",
            "variables": {"q": queries, "s": source},
        },
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return str(body["data"]["startScrape"])


async def results(redis: Redis) -> list[dict[str, str]]:
    entries: Any = await redis.xrange(keys.SCRAPE_RESULTS)
    return [dict(fields) for _, fields in entries]


async def serve_until(server: RequestServer, done: Callable[[], Any], timeout: float = 60) -> None:
    """Run the consumer until `done()` (awaited) is true; it must not have crashed meanwhile."""
    task = asyncio.create_task(server.run())
    try:
        async with asyncio.timeout(timeout):
            while not await done():
                if task.done():
                    task.result()
                    raise AssertionError("the consumer left its loop on its own")
                await asyncio.sleep(0.05)
    finally:
        server.stop()
        await task


async def test_an_admins_start_scrape_over_http_makes_the_images_searchable(
    settings: Settings, booru: FixtureBooru, pipeline: Pipeline, redis_client: Redis
) -> None:
    booru.add(*fixture_posts(1, 12, ["hug", "1girl"], "general"), *fixture_posts(100, 3, ["cat"], "general"))
    with serve(settings) as api:
        assert api.get("/api/search", params={"query": "hug"}).json()["total_hits"] == 0
        entry = start_scrape(api, ["hug"])

        server = RequestServer(settings, redis_client, consumer="test-scraper")
        await serve_until(server, lambda: _count(redis_client, 1))
        [result] = await results(redis_client)
        assert (result["request"], result["status"], result["published"]) == (entry, "done", "12")
        assert await redis_client.xlen(keys.SCRAPE_REQUESTS) == 0  # acknowledged and deleted

        await pipeline.drain()
        found = api.get("/api/search", params={"query": "hug", "limit": 50}).json()
        assert found["total_hits"] == 12 and {img["Source"] for img in found["results"]} == {"gelbooru"}
        assert api.get("/api/search", params={"query": "cat"}).json()["total_hits"] == 0  # only what was asked
        metrics = api.get("/metrics").text
        assert "paktum_scrape_requests_last_run_posts_published 12.0" in metrics
        assert "paktum_scrape_requests_last_run_success 1.0" in metrics


async def _count(redis: Redis, n: int) -> bool:
    return len(await results(redis)) >= n


async def test_malformed_requests_are_acknowledged_with_their_reason_and_the_next_one_still_runs(
    settings: Settings, booru: FixtureBooru, redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    booru.add(*fixture_posts(1, 3, ["hug"], "general"))
    with serve(settings) as api:
        unknown = start_scrape(api, ["hug"], source="nosuchbooru")
        # The api refuses empty queries; an older api or another publisher might not.
        empty = await redis_client.xadd(keys.SCRAPE_REQUESTS, {"queries": " \n# only a comment\n", "source": ""})
        broken = await redis_client.xadd(keys.SCRAPE_REQUESTS, {"unexpected": "field"})
        good = start_scrape(api, ["hug"])

    server = RequestServer(settings, redis_client, consumer="test-scraper")
    with caplog.at_level(logging.INFO, logger="paktum.scraper"):
        await serve_until(server, lambda: _count(redis_client, 4))

    by_request = {result["request"]: result for result in await results(redis_client)}
    assert by_request[unknown]["status"] == "rejected"
    assert "unknown source(s) nosuchbooru" in by_request[unknown]["reason"]
    assert (by_request[empty]["status"], by_request[empty]["reason"]) == ("rejected", "the request has no tag queries")
    assert by_request[broken]["status"] == "rejected"
    assert (by_request[good]["status"], by_request[good]["published"]) == ("done", "3")
    assert await redis_client.xlen(keys.SCRAPE_REQUESTS) == 0
    pending: Any = await redis_client.xpending(keys.SCRAPE_REQUESTS, keys.SCRAPE_REQUESTS_GROUP)
    assert pending["pending"] == 0
    logged = {r.entry: r for r in caplog.records if r.getMessage() == "scrape request rejected"}  # type: ignore[attr-defined]
    assert set(logged) == {unknown, empty, broken}
    assert all(r.levelno == logging.ERROR and r.reason for r in logged.values())  # type: ignore[attr-defined]


class Consumer:
    """`paktum-scraper --serve-requests` as a process, as `paktum up` and a Deployment run it."""

    def __init__(self, settings: Settings, name: str, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAKTUM_")}
        env.update(
            PAKTUM_REDIS_URL=str(settings.redis_url),
            PAKTUM_DATA_DIR=str(settings.data_dir),
            PAKTUM_SCRAPE_SOURCES=sources_env(settings),
            PAKTUM_CONSUMER_NAME=name,
            PAKTUM_RECLAIM_IDLE_MS="1000",
            PAKTUM_READ_BLOCK_MS="100",
        )
        self.log = log
        self.process = subprocess.Popen(
            [BIN / "paktum-scraper", "--serve-requests"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text():
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.log.read_text()}"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


async def _wait_results(redis: Redis, n: int, timeout: float = 30) -> list[dict[str, str]]:
    async with asyncio.timeout(timeout):
        while len(found := await results(redis)) < n:
            await asyncio.sleep(0.1)
    return found


async def test_a_consumer_killed_mid_request_leaves_it_for_the_next_consumer(
    settings: Settings, booru: FixtureBooru, redis_client: Redis, tmp_path: Path
) -> None:
    booru.add(*fixture_posts(1, 4, ["hug"], "general"))
    booru.fail_next("api", Fault(status=0, delay=10))  # the first page hangs: the consumer dies mid-request
    await redis_client.xadd(keys.SCRAPE_REQUESTS, {"queries": "hug", "source": "", "requested": "0"})
    first = Consumer(settings, "first", tmp_path / "first.log")
    try:
        first.wait_for("scrape request started")
        first.process.kill()
        first.process.wait(10)
        assert await results(redis_client) == []
        pending: Any = await redis_client.xpending(keys.SCRAPE_REQUESTS, keys.SCRAPE_REQUESTS_GROUP)
        assert pending["pending"] == 1

        second = Consumer(settings, "second", tmp_path / "second.log")
        try:
            [result] = await _wait_results(redis_client, 1)
        finally:
            second.stop()
    finally:
        first.stop()
    assert (result["status"], result["published"], result["deliveries"]) == ("done", "4", "2")
    assert await redis_client.xlen(keys.SCRAPE_REQUESTS) == 0
    assert await redis_client.xlen(settings.stream) == 4


async def test_sigterm_mid_request_stops_at_once_and_the_restarted_consumer_finishes_it(
    settings: Settings, booru: FixtureBooru, redis_client: Redis, tmp_path: Path
) -> None:
    booru.add(*fixture_posts(1, 2, ["hug"], "general"))
    booru.fail_next("api", Fault(status=0, delay=10))
    await redis_client.xadd(keys.SCRAPE_REQUESTS, {"queries": "hug", "source": "", "requested": "0"})
    first = Consumer(settings, "scraper-1", tmp_path / "first.log")
    try:
        first.wait_for("scrape request started")
        stopped_at = time.monotonic()
        first.process.send_signal(signal.SIGTERM)
        try:
            first.process.wait(8)
        except subprocess.TimeoutExpired:
            raise AssertionError(first.log.read_text()) from None
        assert first.process.returncode == 0  # well before the hanging page would have answered
        assert time.monotonic() - stopped_at < 8
        assert "scrape request left pending for the next start" in first.log.read_text()
        assert await results(redis_client) == []

        again = Consumer(settings, "scraper-1", tmp_path / "again.log")  # the same name, as `paktum up` gives it
        try:
            [result] = await _wait_results(redis_client, 1)
        finally:
            again.stop()
    finally:
        first.stop()
    assert (result["status"], result["published"], result["deliveries"]) == ("done", "2", "2")


async def test_a_request_that_never_finishes_is_recorded_as_failed_after_max_deliveries(
    settings: Settings, redis_client: Redis
) -> None:
    settings = settings.model_copy(update={"max_deliveries": 1, "reclaim_idle_ms": 0})
    entry = await redis_client.xadd(keys.SCRAPE_REQUESTS, {"queries": "hug", "source": ""})
    # A consumer takes it and dies without acknowledging: its one allowed delivery is used up.
    await redis_client.xgroup_create(keys.SCRAPE_REQUESTS, keys.SCRAPE_REQUESTS_GROUP, id="0")
    await redis_client.xreadgroup(keys.SCRAPE_REQUESTS_GROUP, "dead", {keys.SCRAPE_REQUESTS: ">"}, count=1)

    server = RequestServer(settings, redis_client, consumer="test-scraper")
    await serve_until(server, lambda: _count(redis_client, 1))
    [result] = await results(redis_client)
    assert (result["request"], result["status"], result["deliveries"]) == (entry, "failed", "2")
    assert result["reason"] == "gave up after 1 deliveries that did not finish"
    assert await redis_client.xlen(keys.SCRAPE_REQUESTS) == 0
