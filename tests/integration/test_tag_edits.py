"""Editing tags and rating: PATCH /api/image/{id}, GraphQL updateImage/updateImages, over real HTTP on an index the
real hasher filled; the edit survives a re-import through the real hasher; the edit log names a token's fingerprint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from paktum_api.edits import MAX_EDIT_TAGS, token_fingerprint
from paktum_common import keys
from paktum_common.contracts import Rating
from paktum_common.settings import Settings
from paktum_scraper.local import ImportReport, local_posts
from tests.integration.apiserver import serve
from tests.integration.gallery_data import fill
from tests.integration.pipeline import Pipeline

TOKEN = "edit-s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def filled(tmp_path: Path, pipeline: Pipeline) -> Pipeline:
    return await fill(tmp_path / "in", pipeline)


def ids(api: httpx.Client, query: str) -> set[str]:
    body = api.get("/api/search", params={"query": query, "limit": 50}).json()
    return {r["ID"] for r in body["results"]}


def gql(api: httpx.Client, query: str, variables: dict[str, Any] | None = None, token: str | None = TOKEN) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = api.post("/query", json={"query": query, "variables": variables or {}}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def tag_count(api: httpx.Client, prefix: str) -> dict[str, int]:
    tags = gql(api, "query($p: String!) { tags(prefix: $p, limit: 50) { Name Count } }", {"p": prefix})
    return {t["Name"]: t["Count"] for t in tags["data"]["tags"]}


async def test_patch_edits_tags_and_rating_everywhere_and_logs_who(filled: Pipeline, redis_client: Redis) -> None:
    with serve(filled.settings.model_copy(update={"admin_token": SecretStr(TOKEN)})) as api:
        dogs = sorted(ids(api, "dog"))
        dog = dogs[0]
        response = api.patch(
            f"/api/image/{dog}",
            json={"addTags": ["Good Boy", "puppy"], "removeTags": ["dog"], "rating": "q"},
            headers=AUTH,
        )
        assert response.status_code == 200, response.text
        image = response.json()["image"]
        assert image["Tags"] == ["animal", "good_boy", "puppy"] and image["Tagstring"] == "animal good_boy puppy"
        assert image["Rating"] == "questionable"
        assert api.get(f"/api/image/{dog}").json()["image"]["Tags"] == image["Tags"]
        # Found under the new tags only, and the tag counts autocomplete shows follow.
        assert ids(api, "good_boy") == {dog} and dog not in ids(api, "dog") and ids(api, "dog") == set(dogs[1:])
        assert ids(api, "puppy rating:q") == {dog}
        assert tag_count(api, "dog") == {"dog": 2} and tag_count(api, "good") == {"good_boy": 1}
        # Logged with a fingerprint of the token, never the token itself.
        [(_, entry)] = await redis_client.xrange(keys.TAG_EDIT_LOG)
        assert entry == {
            "by": token_fingerprint(TOKEN), "add": "good_boy puppy", "remove": "dog", "rating": "questionable",
            "changed": "1", "image": dog,
        }  # fmt: skip
        assert TOKEN not in str(await redis_client.xrange(keys.TAG_EDIT_LOG))
        # A later edit wins where it disagrees: the removed tag comes back, the added one goes.
        again = api.patch(f"/api/image/{dog}", json={"addTags": ["dog"], "removeTags": ["puppy"]}, headers=AUTH)
        assert again.json()["image"]["Tags"] == ["animal", "good_boy", "dog"]
        assert again.json()["image"]["Rating"] == "questionable"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"rating": "nsfw"}, 400, "unknown rating 'nsfw' (use general, safe, questionable, explicit)"),
        ({}, 400, "nothing to change"),
        ({"addTags": ["-dog"]}, 400, "not a tag: '-dog'"),
        ({"addTags": ["a*"]}, 400, "not a tag: 'a*'"),
        ({"addTags": ["rating:s"]}, 400, "not a tag: 'rating:s'"),
        ({"addTags": ["   "]}, 400, "not a tag: '   '"),
        ({"addTags": ["x" * 201]}, 400, "a tag is at most 200 characters"),
        ({"addTags": ["a"], "removeTags": ["A"]}, 400, "cannot be added and removed at once: 'a'"),
        ({"addTags": [f"t{n}" for n in range(MAX_EDIT_TAGS + 1)]}, 400, "at most 100 tags"),
        ({"addTags": "dog"}, 400, "addTags: Input should be a valid array"),
        ({"tags": ["dog"]}, 400, "tags: Extra inputs are not permitted"),
    ],
    ids=["rating", "empty", "minus", "star", "filter", "blank", "long", "both", "too-many", "not-list", "unknown"],
)
def test_patch_refuses_bad_edits_clearly(indexed: Settings, body: dict[str, Any], status: int, message: str) -> None:
    with serve(indexed.model_copy(update={"admin_token": SecretStr(TOKEN)})) as api:
        dog = sorted(ids(api, "dog"))[0]
        before = api.get(f"/api/image/{dog}").json()["image"]
        response = api.patch(f"/api/image/{dog}", json=body, headers=AUTH)
        assert response.status_code == status and message in response.json()["error"], response.text
        assert api.get(f"/api/image/{dog}").json()["image"] == before


def test_patch_needs_the_admin_token_and_a_known_image(filled: Pipeline) -> None:
    with serve(filled.settings) as api:  # admin off
        dog = sorted(ids(api, "dog"))[0]
        assert api.patch(f"/api/image/{dog}", json={"addTags": ["x"]}, headers=AUTH).status_code == 403
    with serve(filled.settings.model_copy(update={"admin_token": SecretStr(TOKEN)})) as api:
        wrong = {"Authorization": "Bearer nope"}
        assert api.patch(f"/api/image/{dog}", json={"addTags": ["x"]}, headers=wrong).status_code == 401
        assert api.patch(f"/api/image/{dog}", json={"addTags": ["x"]}).status_code == 401
        unknown = api.patch(f"/api/image/{'0' * 32}", json={"addTags": ["x"]}, headers=AUTH)
        assert unknown.status_code == 404 and "no image with ID" in unknown.json()["error"]
        assert ids(api, "x") == set()


async def test_graphql_update_image_and_bulk_update_images(filled: Pipeline, redis_client: Redis) -> None:
    update = """mutation($id: String!, $add: [String!], $remove: [String!], $rating: Rating) {
        updateImage(ID: $id, addTags: $add, removeTags: $remove, rating: $rating) { ID Tags Rating SourceID } }"""
    bulk = """mutation($q: String!, $add: [String!], $remove: [String!], $rating: Rating) {
        updateImages(query: $q, addTags: $add, removeTags: $remove, rating: $rating) }"""
    with serve(filled.settings.model_copy(update={"admin_token": SecretStr(TOKEN)})) as api:
        cat = sorted(ids(api, "cat"))[0]
        answer = gql(api, update, {"id": cat, "add": ["striped"], "rating": "explicit"})
        assert "errors" not in answer, answer
        image = answer["data"]["updateImage"]
        assert image["Tags"] == ["cat", "animal", "cat_ears", "striped"] and image["Rating"] == "explicit"
        # SourceID as REST has it: the imported file's path under its folder
        assert image["SourceID"] and image["SourceID"] == api.get(f"/api/image/{cat}").json()["image"]["SourceID"]
        assert ids(api, "striped rating:e") == {cat}
        # Errors: no token, unknown image, unknown rating, bad tag; nothing changes.
        assert "admin token" in gql(api, update, {"id": cat, "add": ["x"]}, token=None)["errors"][0]["message"]
        assert "no image with ID" in gql(api, update, {"id": "f" * 32, "add": ["x"]})["errors"][0]["message"]
        assert "'nsfw'" in gql(api, update, {"id": cat, "rating": "nsfw"})["errors"][0]["message"]
        assert "not a tag" in gql(api, update, {"id": cat, "add": ["~x"]})["errors"][0]["message"]
        assert "at character" in gql(api, bulk, {"q": "cat rating:nsfw", "add": ["x"]})["errors"][0]["message"]
        # Bulk: every cat loses `cat_ears` and gains `kitty`; the count is of images changed.
        answer = gql(api, bulk, {"q": "cat_ears", "add": ["kitty"], "remove": ["cat_ears"]})
        assert answer == {"data": {"updateImages": 6}}
        assert ids(api, "cat_ears") == set() and len(ids(api, "kitty")) == 6 and ids(api, "kitty") == ids(api, "cat")
        assert gql(api, bulk, {"q": "kitty", "add": ["kitty"]}) == {"data": {"updateImages": 0}}  # nothing new
        assert gql(api, bulk, {"q": "dog", "rating": "safe"}) == {"data": {"updateImages": 3}}
        assert len(ids(api, "rating:safe")) == 8
        entries = [fields for _, fields in await redis_client.xrange(keys.TAG_EDIT_LOG)]
        assert [(e.get("query"), e.get("matched"), e["changed"]) for e in entries] == [
            (None, None, "1"), ("cat_ears", "6", "6"), ("kitty", "6", "0"), ("dog", "3", "3"),
        ]  # fmt: skip


async def test_a_reimport_of_an_edited_post_keeps_the_edit(filled: Pipeline, tmp_path: Path) -> None:
    with serve(filled.settings.model_copy(update={"admin_token": SecretStr(TOKEN)})) as api:
        dogs = sorted(ids(api, "dog"))
        dog = dogs[0]
        edit = {"addTags": ["good_boy"], "removeTags": ["dog"], "rating": "explicit"}
        assert api.patch(f"/api/image/{dog}", json=edit, headers=AUTH).status_code == 200
        # The same files again, through the real hasher, with a new tag from the source and the removed one.
        report = ImportReport()
        posts = local_posts(tmp_path / "in" / "dogs", ["dog", "animal", "fluffy"], Rating.general, report)
        assert await filled.queue.publish_posts(posts) == 3
        await filled.drain()
        image = api.get(f"/api/image/{dog}").json()["image"]
        assert image["Tags"] == ["animal", "good_boy", "fluffy"] and image["Rating"] == "explicit"
        assert ids(api, "dog") == set(dogs[1:]) and ids(api, "fluffy") == set(dogs)
        assert tag_count(api, "dog") == {"dog": 2}
