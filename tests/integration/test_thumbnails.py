"""Thumbnails as the hasher writes and the api serves them: 480 px by default, a 240 px one from the same decode
for srcset, and images stored before the smaller size existed still served (their one thumbnail)."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
from PIL import Image
from pydantic import SecretStr

from paktum_common.settings import Settings
from paktum_common.store import ImageStore
from tests.integration.apiserver import serve
from tests.integration.gallery_data import fill
from tests.integration.pipeline import Pipeline, open_pipeline


def size_of(response: httpx.Response) -> tuple[int, int]:
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg", response.text
    return Image.open(io.BytesIO(response.content)).size


def srcset_of(api: httpx.Client, image_id: str) -> str:
    query = "query($id: String!) { image(ID: $id) { ThumbnailUrl ThumbnailSrcset } }"
    body = api.post("/query", json={"query": query, "variables": {"id": image_id}})
    image = body.json()["data"]["image"]
    assert image["ThumbnailSrcset"].endswith(f"{image['ThumbnailUrl']} 480w")
    return str(image["ThumbnailSrcset"])


def test_default_and_smaller_thumbnails_are_served(indexed: Settings) -> None:
    store = ImageStore.from_settings(indexed)
    with serve(indexed) as api:
        cat = api.get("/api/search", params={"query": "cat", "limit": 1}).json()["results"][0]  # 640 x 480
        assert size_of(api.get(cat["ThumbnailURL"])) == (480, 360)
        srcset = srcset_of(api, cat["ID"])
        small_url = f"{api.base_url}/thumbnails/small/{cat['ID']}.jpg"
        assert srcset == f"{small_url} 240w, {cat['ThumbnailURL']} 480w"
        assert size_of(api.get(small_url)) == (240, 180)
        assert store.small_thumbnail_path(cat["ID"]).is_file()
        assert api.head(small_url).status_code == 200
        assert api.get(small_url, headers={"If-None-Match": f'"{cat["ID"]}-thumbnail-small"'}).status_code == 304
        for bad in ("../x.jpg", f"{cat['ID']}.png", "0" * 32 + ".jpg", ".hidden.jpg"):
            assert api.get(f"/thumbnails/small/{bad}").status_code == 404, bad


async def test_images_stored_before_the_smaller_size_are_still_served(tmp_path: Path, pipeline: Pipeline) -> None:
    # Stored as before this change: 300 px and no smaller one.
    old = pipeline.settings.model_copy(update={"thumbnail_size": 300, "thumbnail_small_size": 0})
    async with open_pipeline(old, pipeline.worker.queue.redis) as before:
        await fill(tmp_path / "in", before)
    store = pipeline.store
    with serve(pipeline.settings) as api:
        dog = api.get("/api/search", params={"query": "dog", "limit": 1}).json()["results"][0]  # 300 x 200
        cat = api.get("/api/search", params={"query": "cat", "limit": 1}).json()["results"][0]
        assert not store.small_thumbnail_path(cat["ID"]).exists()
        # The smaller URL serves the one thumbnail there is, until the file is imported again.
        assert size_of(api.get(f"/thumbnails/small/{cat['ID']}.jpg")) == size_of(api.get(cat["ThumbnailURL"])) == (
            300, 225,
        )  # fmt: skip
        assert size_of(api.get(dog["ThumbnailURL"])) == (300, 200)
        await fill(tmp_path / "in", pipeline)  # the same files again, now with the new sizes
        assert size_of(api.get(cat["ThumbnailURL"])) == (480, 360)
        assert size_of(api.get(f"/thumbnails/small/{cat['ID']}.jpg")) == (240, 180)


def test_with_imgproxy_the_srcset_is_its_one_url(indexed: Settings) -> None:
    keyed = indexed.model_copy(
        update={"imgproxy_url": "http://imgproxy.test", "imgproxy_key": SecretStr("ab" * 8),
                "imgproxy_salt": SecretStr("cd" * 8)}
    )  # fmt: skip
    with serve(keyed) as api:
        cat = api.get("/api/search", params={"query": "cat", "limit": 1}).json()["results"][0]
        assert cat["ThumbnailURL"].startswith("http://imgproxy.test/") and "rs:fit:480:480" in cat["ThumbnailURL"]
        query = "query($id: String!) { image(ID: $id) { ThumbnailSrcset } }"
        body = api.post("/query", json={"query": query, "variables": {"id": cat["ID"]}}).json()
        assert body["data"]["image"]["ThumbnailSrcset"] == cat["ThumbnailURL"]
