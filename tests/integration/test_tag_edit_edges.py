"""Tag edits at their edges, over real HTTP: Redis away (a 503 saying so, for PATCH and for GraphQL, and the edit
works once it is back), many edits of one image at once (none lost, in the index or in what is remembered), and
a bulk edit over more images than one batch (every one changed, the count said)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.catalog import BATCH
from paktum_common.contracts import TagEdit
from paktum_common.search import open_search
from paktum_common.settings import Settings
from tests.documents import synthetic
from tests.faults import RestartableRedis
from tests.integration.apiserver import serve

TOKEN = "edge-edit-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UPDATE = """mutation($id: String!, $add: [String!]) { updateImage(ID: $id, addTags: $add) { ID Tags } }"""
BULK = """mutation($q: String!, $add: [String!]) { updateImages(query: $q, addTags: $add) }"""


def indexed(settings: Settings, count: int) -> list[str]:
    """`count` documents in the real SQLite index (no files: edits touch only the index and Redis)."""

    async def add() -> None:
        search = open_search(settings)
        try:
            for start in range(0, count, 500):
                await search.add_documents([synthetic(n, "plain") for n in range(start, min(count, start + 500))])
        finally:
            await search.close()

    asyncio.run(add())
    return [f"{n:032x}" for n in range(count)]


def gql(api: httpx.Client, query: str, **variables: Any) -> httpx.Response:
    return api.post("/query", json={"query": query, "variables": variables}, headers=AUTH)


@pytest.fixture
def settings(tmp_path: Path, own_redis: RestartableRedis) -> Iterator[Settings]:
    yield Settings(data_dir=tmp_path / "data", redis_url=own_redis.url, admin_token=SecretStr(TOKEN))


async def test_redis_away_during_an_edit_is_a_503_saying_so(settings: Settings, own_redis: RestartableRedis) -> None:
    (image,) = await asyncio.to_thread(indexed, settings, 1)
    with serve(settings) as api:
        await asyncio.to_thread(own_redis.stop)
        patched = api.patch(f"/api/image/{image}", json={"addTags": ["lost"]}, headers=AUTH)
        assert patched.status_code == 503, patched.text
        assert "redis unavailable" in patched.json()["error"]
        answer = gql(api, UPDATE, id=image, add=["lost"])
        assert answer.status_code == 503, answer.text
        assert answer.json()["data"] is None
        assert "redis unavailable" in answer.json()["errors"][0]["message"]
        bulk = gql(api, BULK, q="plain", add=["lost"])
        assert bulk.status_code == 503 and "redis unavailable" in bulk.json()["errors"][0]["message"], bulk.text
        # Nothing was half done: the index still has the image as it was.
        assert api.get(f"/api/image/{image}").json()["image"]["Tags"] == ["plain"]

        await asyncio.to_thread(own_redis.start)
        patched = api.patch(f"/api/image/{image}", json={"addTags": ["back"]}, headers=AUTH)
        assert patched.status_code == 200, patched.text
        assert patched.json()["image"]["Tags"] == ["plain", "back"]
        answer = gql(api, UPDATE, id=image, add=["again"])
        assert answer.status_code == 200 and answer.json()["data"]["updateImage"]["Tags"] == ["plain", "back", "again"]


async def test_concurrent_edits_of_one_image_all_apply(settings: Settings, own_redis: RestartableRedis) -> None:
    (image,) = await asyncio.to_thread(indexed, settings, 1)
    edits = 24
    with serve(settings) as api, ThreadPoolExecutor(edits) as pool:

        def edit(n: int) -> int:
            if n % 2:
                return api.patch(f"/api/image/{image}", json={"addTags": [f"rest{n}"]}, headers=AUTH).status_code
            return gql(api, UPDATE, id=image, add=[f"gql{n}"]).status_code

        statuses = list(await asyncio.to_thread(lambda: list(pool.map(edit, range(edits)))))
        assert statuses == [200] * edits
        wanted = {f"rest{n}" if n % 2 else f"gql{n}" for n in range(edits)} | {"plain"}
        assert set(api.get(f"/api/image/{image}").json()["image"]["Tags"]) == wanted
        for tag in wanted - {"plain"}:
            assert [r["ID"] for r in api.get("/api/search", params={"query": tag}).json()["results"]] == [image]
    # What is remembered for re-scrapes holds every edit too.
    redis = Redis.from_url(own_redis.url, decode_responses=True)
    remembered = TagEdit.from_redis(await redis.hget(keys.TAG_EDITS, image))
    await redis.aclose()
    assert set(remembered.add) == wanted - {"plain"}


async def test_a_bulk_edit_over_more_than_a_batch_reaches_every_image_and_says_how_many(
    settings: Settings, own_redis: RestartableRedis
) -> None:
    count = 2 * BATCH + 37
    ids = await asyncio.to_thread(indexed, settings, count)
    with serve(settings) as api:
        answer = gql(api, BULK, q="plain", add=["bulk"])
        assert answer.json() == {"data": {"updateImages": count}}, answer.text
        found = api.get("/api/search", params={"query": "bulk", "limit": 1}).json()
        assert found["total_hits"] == count
        page = gql(api, 'query { imageSearch(query: "bulk plain", limit: 1) { Total } }').json()
        assert page["data"]["imageSearch"]["Total"] == count
        again = gql(api, BULK, q="plain", add=["bulk"]).json()
        assert again == {"data": {"updateImages": 0}}  # matched all, changed none
    redis = Redis.from_url(own_redis.url, decode_responses=True)
    entries = [fields for _, fields in await redis.xrange(keys.TAG_EDIT_LOG)]
    remembered = await redis.hlen(keys.TAG_EDITS)
    await redis.aclose()
    assert [(e["matched"], e["changed"]) for e in entries] == [(str(count), str(count)), (str(count), "0")]
    assert remembered == len(ids)
