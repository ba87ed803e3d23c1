"""Search by image over real HTTP: uploads, URLs fetched through the guarded download, GraphQL similarImages."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from paktum_common.settings import Settings
from paktum_hasher.phash import phash_int
from paktum_scraper.local import ImportReport, local_posts
from tests.imagefiles import drawing, encode, flattened, picture
from tests.integration.apiserver import serve
from tests.integration.pipeline import Pipeline

TURN = Image.Transpose


@pytest.fixture
async def indexed(tmp_path: Path, pipeline: Pipeline) -> dict[str, str]:
    folder = tmp_path / "in"
    folder.mkdir()
    files = {"original.jpg": encode(picture(70), "JPEG", quality=90), "other.jpg": encode(picture(71), "JPEG")}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    await pipeline.queue.publish_posts(local_posts(folder, ["cat"], None, ImportReport()))
    await pipeline.drain()
    return {name.partition(".")[0]: hashlib.md5(data).hexdigest() for name, data in files.items()}


@pytest.fixture
def picture_site(tmp_path: Path) -> Iterator[str]:
    """A loopback web server for the pictures under tmp_path/site."""
    root = tmp_path / "site"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_uploaded_mirror_finds_the_original_without_being_indexed(
    indexed: dict[str, str], settings: Settings
) -> None:
    mirrored = encode(picture(70).transpose(TURN.FLIP_LEFT_RIGHT), "JPEG", quality=80)
    with serve(settings) as api:
        before = api.get("/api/search", params={"query": "cat", "limit": 50}).json()["total_hits"]
        body = api.post("/api/similar", files={"file": ("m.jpg", mirrored, "image/jpeg")}).json()
        assert body["error"] == ""
        assert [r["ID"] for r in body["results"]] == [indexed["original"]]
        assert body["transforms"] == ["mirror"] and 0 <= body["distances"][0] <= 10
        assert body["results"][0]["URL"].endswith(f"{indexed['original']}.jpg")
        # The raw image as the body, and a rotated copy: found too, with the turn from it to the original.
        turned = encode(picture(70).transpose(TURN.ROTATE_90), "PNG")
        raw = api.post("/api/similar", content=turned, headers={"content-type": "image/png"}).json()
        assert [r["ID"] for r in raw["results"]] == [indexed["original"]] and raw["transforms"] == [
            "rot270"
        ]  # the original is the query turned back
        assert api.get("/api/search", params={"query": "cat", "limit": 50}).json()["total_hits"] == before
        unrelated = encode(picture(99), "JPEG")
        assert api.post("/api/similar", files={"file": ("u.jpg", unrelated, "image/jpeg")}).json()["results"] == []


def test_a_url_is_fetched_through_the_guarded_download(
    indexed: dict[str, str], settings: Settings, picture_site: str, tmp_path: Path
) -> None:
    (tmp_path / "site" / "flip.jpg").write_bytes(encode(picture(70).transpose(TURN.ROTATE_180), "JPEG"))
    with serve(settings.model_copy(update={"download_allow_private": True})) as api:
        body = api.post("/api/similar", json={"url": f"{picture_site}/flip.jpg"}).json()
        assert [r["ID"] for r in body["results"]] == [indexed["original"]] and body["transforms"] == ["rot180"]
        query = f'{{ similarImages(url: "{picture_site}/flip.jpg") {{ ID Distance Transform }} }}'
        found = api.post("/query", json={"query": query}).json()["data"]["similarImages"]
        assert [(f["ID"], f["Transform"]) for f in found] == [(indexed["original"], "rot180")]
        missing = api.post("/api/similar", json={"url": f"{picture_site}/nothing.jpg"})
        assert missing.status_code == 400 and "404" in missing.json()["error"]
    with serve(settings) as api:  # loopback is not a public address: refused
        refused = api.post("/api/similar", json={"url": f"{picture_site}/flip.jpg"})
        assert refused.status_code == 400 and "non-public address" in refused.json()["error"]


async def test_similar_images_by_id_finds_its_mirror_and_leaves_the_image_itself_out(
    indexed: dict[str, str], settings: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    folder = tmp_path / "more"
    folder.mkdir()
    mirror = encode(picture(70).transpose(TURN.FLIP_LEFT_RIGHT), "JPEG", quality=85)
    (folder / "mirror.jpg").write_bytes(mirror)
    await pipeline.queue.publish_posts(local_posts(folder, ["cat"], None, ImportReport()))
    await pipeline.drain()
    with serve(settings) as api:
        query = f'{{ similarImages(ID: "{indexed["original"]}", distance: 10, limit: 5) {{ ID Transform }} }}'
        found = api.post("/query", json={"query": query}).json()["data"]["similarImages"]
        assert found == [{"ID": hashlib.md5(mirror).hexdigest(), "Transform": "mirror"}]
        both = api.post("/query", json={"query": '{ similarImages(ID: "x", url: "http://a/b") { ID } }'}).json()
        assert "exactly one of url and ID" in both["errors"][0]["message"]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "message"),
    [
        ({"content": b"not a picture", "headers": {"content-type": "image/jpeg"}}, 400, "not an image"),
        ({"content": b"x" * 5000, "headers": {"content-type": "image/jpeg"}}, 413, "PAKTUM_SIMILAR_MAX_BYTES"),
        ({"json": {"nothing": 1}}, 400, '{"url"'),
        ({"json": {"url": "file:///etc/passwd"}}, 400, "http or https"),
        ({"files": {"other": ("a.txt", b"hello", "text/plain")}}, 400, "form field `file`"),
        ({"content": b"", "headers": {"content-type": "image/jpeg"}}, 400, "no picture"),
    ],
    ids=["not an image", "too large", "json without url", "file url", "form without file", "empty"],
)
def test_bad_requests_get_a_clear_refusal(
    settings: Settings, request_kwargs: dict[str, object], status: int, message: str
) -> None:
    with serve(settings.model_copy(update={"similar_max_bytes": 4000})) as api:
        response = api.post("/api/similar", **request_kwargs)  # type: ignore[arg-type]
        assert response.status_code == status and message in response.json()["error"]


def test_distance_and_limit_are_checked(settings: Settings) -> None:
    with serve(settings) as api:
        data = encode(picture(3), "JPEG")
        bad = api.post("/api/similar", params={"distance": "13"}, content=data, headers={"content-type": "image/jpeg"})
        assert bad.status_code == 400 and "distance" in bad.json()["error"]
        bad = api.post("/api/similar", params={"limit": "0"}, content=data, headers={"content-type": "image/jpeg"})
        assert bad.status_code == 400 and "limit" in bad.json()["error"]


async def test_a_transparent_picture_is_found_by_a_copy_flattened_on_black(
    tmp_path: Path, pipeline: Pipeline, settings: Settings
) -> None:
    # The stored picture's pHash is of it on white; its pHash on black is one of its alternates, and the opaque
    # copy has no alternate near the white one: only the other-background table finds it.
    files = {"drawing.png": encode(drawing(), "PNG")}
    original = (await pipeline.index_files(tmp_path / "in", files, ["drawing"]))["drawing.png"]
    on_black = encode(flattened(drawing(), (0, 0, 0)), "JPEG", quality=85)
    white_hash, black_hash = (phash_int(flattened(drawing(), c)) for c in ((255, 255, 255), (0, 0, 0)))
    assert (white_hash ^ black_hash).bit_count() > 10  # not found through the plain hash
    with serve(settings) as api:
        body = api.post("/api/similar", files={"file": ("b.jpg", on_black, "image/jpeg")}).json()
        assert body["error"] == ""
        assert [r["ID"] for r in body["results"]] == [original] and body["distances"][0] <= 10
