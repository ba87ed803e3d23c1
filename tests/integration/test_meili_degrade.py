"""With Meilisearch down, the api answers 503 and recovers, and the hasher loses nothing: real api, real hasher,
real Redis, and a fake Meilisearch on loopback that goes down and comes back on the same port."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from paktum_cli.embedded_redis import free_port
from paktum_common.contracts import Rating
from paktum_common.search import parse_query
from paktum_common.settings import Settings
from paktum_scraper.local import ImportReport, local_posts
from tests.fakemeili import FakeMeili
from tests.imagefiles import good_images
from tests.integration.apiserver import serve
from tests.integration.pipeline import Pipeline, open_pipeline


@pytest.fixture
def meili_port() -> Iterator[int]:
    yield free_port()


@pytest.fixture
def meili_settings(settings: Settings, meili_port: int) -> Settings:
    # Many deliveries allowed: this test is about an outage of a second or two, not the retry budget.
    return settings.model_copy(update={"search_url": f"http://127.0.0.1:{meili_port}", "max_deliveries": 50})


def test_the_api_answers_503_while_meilisearch_is_down_and_recovers(meili_settings: Settings, meili_port: int) -> None:
    fake = FakeMeili()
    try:
        with serve(meili_settings) as api:
            down = api.get("/api/search", params={"query": "cat"})
            assert down.status_code == 503
            body = down.json()
            assert body["results"] == [] and body["total_hits"] == 0
            assert body["error"].startswith(
                f"search unavailable: meilisearch at http://127.0.0.1:{meili_port} is unreachable"
            )
            assert api.get(f"/api/image/{'a' * 32}").status_code == 503
            ready = api.get("/readyz")
            assert ready.status_code == 503 and "unreachable" in ready.json()["problems"]["search"]

            fake.start(meili_port)
            up = api.get("/api/search", params={"query": "cat"})
            assert up.status_code == 200 and up.json() == {"results": [], "error": "", "total_hits": 0}
            assert api.get("/readyz").json() == {"status": "ready"}
            assert "images" in fake.indexes  # the api's first successful call set the index up

            fake.stop()
            assert api.get("/api/search", params={"query": "cat"}).status_code == 503
            fake.start(meili_port)
            assert api.get("/api/search", params={"query": "cat"}).status_code == 200
    finally:
        fake.stop()


async def test_the_hasher_keeps_posts_pending_while_meilisearch_is_down_and_indexes_them_after(
    tmp_path: Path, meili_settings: Settings, meili_port: int, redis_client: Redis
) -> None:
    # One delivery allowed: an outage must not spend the entries' delivery budget.
    meili_settings = meili_settings.model_copy(update={"max_deliveries": 1})
    async with open_pipeline(meili_settings, redis_client) as pipeline:
        await _ride_out_an_outage(tmp_path, pipeline, meili_settings, meili_port, redis_client)


async def _ride_out_an_outage(
    tmp_path: Path, pipeline: Pipeline, meili_settings: Settings, meili_port: int, redis_client: Redis
) -> None:
    queue, worker, search = pipeline.queue, pipeline.worker, pipeline.search
    good_images(tmp_path / "in", 5)
    await queue.publish_posts(local_posts(tmp_path / "in", ["cat"], Rating.safe, ImportReport()))
    fake = FakeMeili()
    task = asyncio.create_task(worker.run())
    try:
        # Down: every post is read, decoded and stored, but the index write fails, so none is acknowledged.
        async with asyncio.timeout(30):
            while (await queue.depth())[1] < 5:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # some retries while it is still down
        assert await queue.depth() == (0, 5)
        assert await redis_client.xlen(meili_settings.dead_letter_stream) == 0

        fake.start(meili_port)
        async with asyncio.timeout(30):
            while await queue.depth() != (0, 0):
                assert not task.done(), task
                await asyncio.sleep(0.05)
        assert len(fake.indexes["images"].documents) == 5
        assert await redis_client.xlen(meili_settings.dead_letter_stream) == 0
        assert (await search.search(parse_query("cat"), 10)).total == 5
    finally:
        worker.stop()
        await task
        fake.stop()
