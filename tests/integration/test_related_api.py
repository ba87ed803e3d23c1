"""Related images and the admin "not variants" decision over real HTTP, on groups the real hasher formed."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from paktum_cleanup.run import run_cleanup
from paktum_common.search.sqlite import SqliteSearch
from paktum_common.settings import Settings
from paktum_scraper.local import ImportReport, local_posts
from tests.imagefiles import encode, picture
from tests.integration.apiserver import serve
from tests.integration.pipeline import Pipeline

TOKEN = "correct horse battery staple"


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    with serve(settings.model_copy(update={"admin_token": SecretStr(TOKEN)})) as client:
        yield client


@pytest.fixture
def api_without_admin(settings: Settings) -> Iterator[httpx.Client]:
    with serve(settings) as client:
        yield client


@pytest.fixture
async def variants(tmp_path: Path, pipeline: Pipeline) -> dict[str, str]:
    """A picture and three variants of it, plus an unrelated picture: name -> ID."""
    folder = tmp_path / "in"
    folder.mkdir()
    image = picture(50)
    width, height = image.size
    files = {
        "original.jpg": encode(image, "JPEG", quality=90),
        "half.png": encode(image.resize((width // 2, height // 2)), "PNG"),
        "low.jpg": encode(image, "JPEG", quality=40),
        "crop.jpg": encode(image.crop((6, 4, width - 6, height - 4)), "JPEG", quality=85),
        "other.jpg": encode(picture(51), "JPEG", quality=90),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    await pipeline.queue.publish_posts(local_posts(folder, ["cat"], None, ImportReport()))
    await pipeline.drain()
    return {name.partition(".")[0]: hashlib.md5(data).hexdigest() for name, data in files.items()}


def test_related_lists_the_group_nearest_first_with_distances(variants: dict[str, str], api: httpx.Client) -> None:
    body = api.get(f"/api/image/{variants['original']}/related").json()
    assert set(body) == {"results", "distances", "transforms", "error"} and body["error"] == ""
    assert body["transforms"] == ["none"] * 3
    assert set(body["results"]) == {variants["half"], variants["low"], variants["crop"]}
    assert len(body["distances"]) == 3 and body["distances"] == sorted(body["distances"])
    assert all(0 <= d <= 10 for d in body["distances"])
    alone = api.get(f"/api/image/{variants['other']}/related").json()
    assert alone == {"results": [], "distances": [], "transforms": [], "error": ""}
    # ?distance=N keeps those within N bits of this image.
    nearest = min(body["distances"])
    narrow = api.get(f"/api/image/{variants['original']}/related", params={"distance": nearest}).json()
    assert narrow["distances"] == [d for d in body["distances"] if d <= nearest] and narrow["results"]
    assert api.get(f"/api/image/{variants['original'].upper()}/related").json() == body


@pytest.mark.parametrize("after_cleanup", [False, True], ids=["linked by the hasher", "after a full regroup"])
async def test_mirrored_and_rotated_copies_are_related_with_their_transform(
    tmp_path: Path, pipeline: Pipeline, api: httpx.Client, after_cleanup: bool
) -> None:
    folder = tmp_path / "turned"
    folder.mkdir()
    image = picture(60)
    turn = Image.Transpose
    files = {
        "original.jpg": encode(image, "JPEG", quality=90),
        "mirror.jpg": encode(image.transpose(turn.FLIP_LEFT_RIGHT), "JPEG", quality=85),
        "rot90.png": encode(image.transpose(turn.ROTATE_90), "PNG"),
        "rot180.jpg": encode(image.transpose(turn.ROTATE_180), "JPEG", quality=80),
        "other.jpg": encode(picture(61), "JPEG", quality=90),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    ids = {name.partition(".")[0]: hashlib.md5(data).hexdigest() for name, data in files.items()}
    # One at a time, the original first: each copy is a re-upload the hasher links as it indexes it.
    for name in files:
        single = tmp_path / "one" / name.partition(".")[0]
        single.mkdir(parents=True)
        (single / name).write_bytes(files[name])
        await pipeline.queue.publish_posts(local_posts(single, ["cat"], None, ImportReport()))
        await pipeline.drain()
    if after_cleanup:
        summary = await run_cleanup(pipeline.settings)
        assert summary.ok, summary.lines()
    body = api.get(f"/api/image/{ids['original']}/related").json()
    seen = dict(zip(body["results"], body["transforms"], strict=True))
    assert seen == {ids["mirror"]: "mirror", ids["rot90"]: "rot90", ids["rot180"]: "rot180"}
    assert all(0 <= d <= 10 for d in body["distances"])
    # Seen from the rotated copy, the original is that copy turned back the other way.
    back = api.get(f"/api/image/{ids['rot90']}/related").json()
    assert dict(zip(back["results"], back["transforms"], strict=True))[ids["original"]] == "rot270"
    query = f'{{ image(ID: "{ids["original"]}") {{ Related {{ ID Distance Transform }} }} }}'
    related = api.post("/query", json={"query": query}).json()["data"]["image"]["Related"]
    assert {r["ID"]: r["Transform"] for r in related} == seen
    assert api.get(f"/api/image/{ids['other']}/related").json()["results"] == []


def test_graphql_related_matches_rest_and_respects_not_variants(variants: dict[str, str], api: httpx.Client) -> None:
    rest = api.get(f"/api/image/{variants['original']}/related").json()
    original, half = variants["original"], variants["half"]
    query = f'{{ image(ID: "{original}") {{ ID Related {{ ID Distance }} }} }}'
    image = api.post("/query", json={"query": query}).json()["data"]["image"]
    expected = list(zip(rest["results"], rest["distances"], strict=True))
    assert [(r["ID"], r["Distance"]) for r in image["Related"]] == expected
    # On a page, Related is fetched with the page: the same lists, whichever way the query reaches it.
    pages = (
        '{ searchImages(query: "cat", limit: 10) { ID Related { ID Distance } } }',
        '{ searchImages(query: "cat", limit: 10) { ID ...R } } fragment R on Image { Related { ID Distance } }',
        '{ imageSearch(query: "cat", limit: 10) { Images { ID ... on Image { Related { ID Distance } } } } }',
        '{ paginatedSearch(query: "cat", limit: 10, page: 1) { ID Related { ID Distance } } }',
    )
    for page in pages:
        found = api.post("/query", json={"query": page}).json()["data"]
        images = found["imageSearch"]["Images"] if "imageSearch" in found else next(iter(found.values()))
        assert len(images) == len(variants)
        for each in images:
            alone = api.get(f"/api/image/{each['ID']}/related").json()
            assert [(r["ID"], r["Distance"]) for r in each["Related"]] == list(
                zip(alone["results"], alone["distances"], strict=True)
            ), page

    mark = f'mutation {{ markNotVariants(ID: "{original}", OtherID: "{half}") }}'
    marked = api.post("/query", json={"query": mark}, headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert marked == {"data": {"markNotVariants": True}}
    again = api.post("/query", json={"query": query}).json()["data"]["image"]
    assert half not in {r["ID"] for r in again["Related"]}
    assert {r["ID"] for r in again["Related"]} == {variants["low"], variants["crop"]}


async def test_related_shows_an_edit_or_delete_of_a_related_image_at_the_next_request(
    variants: dict[str, str], settings: Settings, api: httpx.Client
) -> None:
    """The api keeps related images' documents in memory: a change another process commits still shows at once."""
    query = '{ searchImages(query: "cat", limit: 10) { ID Related { ID Tags } } }'

    def related_of_original() -> dict[str, list[str]]:
        images = api.post("/query", json={"query": query}).json()["data"]["searchImages"]
        [original] = [image for image in images if image["ID"] == variants["original"]]
        return {related["ID"]: related["Tags"] for related in original["Related"]}

    for _ in range(2):  # read, then from memory
        assert related_of_original() == {variants[name]: ["cat"] for name in ("half", "low", "crop")}
    writer = SqliteSearch(settings.effective_search_url.removeprefix("sqlite:///"))  # as the hasher writes
    try:
        [low] = (await writer.get_documents([variants["low"]])).values()
        await writer.add_documents([low.model_copy(update={"Tags": ["cat", "edited"], "Tagstring": "cat edited"})])
        await writer.delete_documents([variants["crop"]])
    finally:
        await writer.close()
    assert related_of_original() == {variants["half"]: ["cat"], variants["low"]: ["cat", "edited"]}


@pytest.mark.parametrize("distance", ["11", "-1", "ten", "", "1.5"])
def test_related_rejects_a_bad_distance(variants: dict[str, str], api: httpx.Client, distance: str) -> None:
    response = api.get(f"/api/image/{variants['original']}/related", params={"distance": distance})
    assert response.status_code == 400
    assert "distance must be a whole number from 0 to 10" in response.json()["error"]


def test_not_variants_needs_the_admin_token(variants: dict[str, str], api: httpx.Client) -> None:
    pair = {"a": variants["original"], "b": variants["half"]}
    assert api.post("/api/admin/not-variants", json=pair).status_code == 401
    wrong = api.post("/api/admin/not-variants", json=pair, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "admin token" in wrong.json()["error"]
    assert variants["half"] in api.get(f"/api/image/{variants['original']}/related").json()["results"]


def test_not_variants_is_off_without_a_configured_token(
    variants: dict[str, str], api_without_admin: httpx.Client
) -> None:
    pair = {"a": variants["original"], "b": variants["half"]}
    response = api_without_admin.post("/api/admin/not-variants", json=pair, headers={"Authorization": "Bearer x"})
    assert response.status_code == 403 and "PAKTUM_ADMIN_TOKEN" in response.json()["error"]


def test_not_variants_separates_two_images(variants: dict[str, str], api: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    original, half = variants["original"], variants["half"]
    response = api.post("/api/admin/not-variants", json={"a": original, "b": half}, headers=auth)
    assert response.status_code == 200
    assert response.json() == {"a": original, "b": half, "newly_marked": True, "still_grouped": True, "error": ""}
    assert half not in api.get(f"/api/image/{original}/related").json()["results"]
    assert original not in api.get(f"/api/image/{half}/related").json()["results"]
    assert variants["low"] in api.get(f"/api/image/{half}/related").json()["results"]
    again = api.post("/api/admin/not-variants", json={"a": half, "b": original}, headers={"X-Admin-Token": TOKEN})
    assert again.status_code == 200 and again.json()["newly_marked"] is False


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"a": "0" * 32, "b": "1" * 32}, 404, "no image with ID"),
        ({"a": "x"}, 400, "expected a JSON body"),
        ("not json", 400, "expected a JSON body"),
    ],
    ids=["unknown-images", "missing-field", "not-json"],
)
def test_not_variants_rejects_bad_requests(
    variants: dict[str, str], api: httpx.Client, body: object, status: int, reason: str
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if isinstance(body, str):
        response = api.post("/api/admin/not-variants", content=body, headers=headers)
    else:
        response = api.post("/api/admin/not-variants", json=body, headers=headers)
    assert response.status_code == status and reason in response.json()["error"]
    same = {"a": variants["low"], "b": variants["low"]}  # well-formed, so not a 400: it contradicts itself
    assert api.post("/api/admin/not-variants", json=same, headers=headers).status_code == 409


async def test_a_cleanup_run_shows_on_the_api_metrics(
    variants: dict[str, str], api: httpx.Client, settings: Settings
) -> None:
    summary = await run_cleanup(settings)
    assert summary.ok, summary.lines()
    text = (await asyncio.to_thread(api.get, "/metrics")).text
    assert "paktum_cleanup_last_run_variant_groups 1.0" in text
    assert "paktum_cleanup_last_run_largest_group_images 4.0" in text
    assert 'paktum_cleanup_last_run_purged_images{reason="banned_tag"} 0.0' in text
    assert "paktum_cleanup_last_run_success 1.0" in text


async def test_with_transforms_off_a_mirrored_copy_is_not_related(
    tmp_path: Path, settings: Settings, redis_client: object
) -> None:
    from tests.integration.pipeline import open_pipeline

    off = settings.model_copy(update={"variant_transforms": False})
    folder = tmp_path / "off"
    folder.mkdir()
    image = picture(62)
    files = {
        "original.jpg": encode(image, "JPEG", quality=90),
        "mirror.jpg": encode(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG", quality=85),
        "low.jpg": encode(image, "JPEG", quality=40),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    ids = {name.partition(".")[0]: hashlib.md5(data).hexdigest() for name, data in files.items()}
    async with open_pipeline(off, redis_client) as pipeline:  # type: ignore[arg-type]
        await pipeline.queue.publish_posts(local_posts(folder, ["cat"], None, ImportReport()))
        await pipeline.drain()
        summary = await run_cleanup(off)
        assert summary.ok, summary.lines()
    with serve(off) as api:
        body = api.get(f"/api/image/{ids['original']}/related").json()
        assert body["results"] == [ids["low"]] and body["transforms"] == ["none"]
