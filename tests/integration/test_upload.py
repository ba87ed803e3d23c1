"""Uploads over real HTTP (POST /api/upload, GET /api/upload/{md5}) into real Redis, handled by the real hasher:
indexed and searchable, exists, refused with the dead letter's reason, limits, tokens; staging left empty."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from paktum_api import upload
from paktum_common import keys
from paktum_common.settings import Settings
from tests.imagefiles import good_images
from tests.integration.apiserver import serve
from tests.integration.pipeline import Pipeline

ADMIN = "upload-admin-s3cret"
UPLOADER = "upload-only-t0ken"
READER = "reader-t0ken-for-uploads"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tokens(settings: Settings, **changes: object) -> Settings:
    update = {"admin_token": SecretStr(ADMIN), "upload_token": SecretStr(UPLOADER)}
    return settings.model_copy(update={**update, **changes})


def staged(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.upload_staging_dir.iterdir())


def files_of(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]


def post(api: httpx.Client, files: Any, token: str = ADMIN, **data: str) -> httpx.Response:
    return api.post("/api/upload", files=files, data=data, headers=auth(token))


def search_ids(api: httpx.Client, query: str) -> set[str]:
    body = api.get("/api/search", params={"query": query, "limit": 50}, headers=auth(ADMIN)).json()
    return {r["ID"] for r in body["results"]}


@pytest.fixture
def pictures(tmp_path: Path) -> list[Path]:
    return good_images(tmp_path / "pictures", 3)


async def test_pending_then_indexed_searchable_then_exists(pipeline: Pipeline, pictures: list[Path]) -> None:
    settings = tokens(pipeline.settings)
    with serve(settings) as api:
        response = post(api, files_of(pictures[:2]), tags="Holiday beach", rating="s", wait="0")
        assert response.status_code == 200, response.text
        results = response.json()["files"]
        md5s = [hashlib.md5(p.read_bytes()).hexdigest() for p in pictures[:2]]
        assert [(r["ID"], r["status"]) for r in results] == [(md5, "pending") for md5 in md5s]
        assert len(staged(settings)) == 2  # waiting for the hasher

        await pipeline.drain()
        for md5 in md5s:
            answer = api.get(f"/api/upload/{md5}", headers=auth(UPLOADER)).json()
            assert (answer["ID"], answer["status"]) == (md5, "indexed")
        assert staged(settings) == []
        assert search_ids(api, "holiday beach") == set(md5s)
        image = api.get(f"/api/image/{md5s[0]}", headers=auth(ADMIN)).json()["image"]
        assert image["Rating"] == "safe"

        again = post(api, files_of(pictures[:1]), token=UPLOADER, tags="other")
        assert again.status_code == 200
        assert [(r["ID"], r["status"]) for r in again.json()["files"]] == [(md5s[0], "exists")]
        assert staged(settings) == []


async def test_waits_for_the_hasher_and_answers_indexed(pipeline: Pipeline, pictures: list[Path]) -> None:
    settings = tokens(pipeline.settings)
    with serve(settings) as api:
        await pipeline.drain()  # a hasher has just read the stream: the api knows one is there to wait for
        answer = asyncio.ensure_future(
            asyncio.to_thread(post, api, files_of(pictures[2:]), UPLOADER, tags="waited", wait="30")
        )
        while not answer.done():  # the hasher runs here while the request waits
            await pipeline.drain()
            await asyncio.sleep(0.05)
        response = answer.result()
        assert response.status_code == 200, response.text
        md5 = hashlib.md5(pictures[2].read_bytes()).hexdigest()
        assert [(r["ID"], r["status"]) for r in response.json()["files"]] == [(md5, "indexed")]
        assert staged(settings) == []
        assert search_ids(api, "waited") == {md5}


async def test_corrupt_and_banned_are_refused_with_the_reason(
    pipeline: Pipeline, pictures: list[Path], redis_client: Redis
) -> None:
    settings = tokens(pipeline.settings)
    corrupt = b"\xff\xd8\xff\xe0" + b"not really a jpeg " * 50
    banned = pictures[0].read_bytes()
    banned_md5 = hashlib.md5(banned).hexdigest()
    await redis_client.sadd(keys.BANNED_MD5, banned_md5)
    with serve(settings) as api:
        files = [("file", ("broken.jpg", corrupt, "image/jpeg")), ("file", ("banned.jpg", banned, "image/jpeg"))]
        response = post(api, files, tags="x", wait="0")
        assert response.status_code == 200, response.text
        assert [r["status"] for r in response.json()["files"]] == ["pending", "pending"]
        await pipeline.drain()
        broken = api.get(f"/api/upload/{hashlib.md5(corrupt).hexdigest()}", headers=auth(ADMIN)).json()
        assert broken["status"] == "refused" and broken["reason"], broken
        refused = api.get(f"/api/upload/{banned_md5}", headers=auth(ADMIN)).json()
        assert refused["status"] == "refused" and "banned" in refused["reason"], refused
        assert staged(settings) == []


async def test_not_an_image_is_refused_up_front(pipeline: Pipeline, redis_client: Redis) -> None:
    settings = tokens(pipeline.settings)
    with serve(settings) as api:
        response = post(api, [("file", ("notes.jpg", b"just some text, not a picture", "image/jpeg"))], wait="0")
        assert response.status_code == 415, response.text
        (result,) = response.json()["files"]
        assert result["status"] == "refused" and "not an image" in result["reason"]
        assert staged(settings) == []
        assert await redis_client.xlen(keys.INGEST_STREAM) == 0


@pytest.mark.parametrize(
    ("limits", "chunked"),
    [({"max_file_bytes": 5000}, False), ({"upload_max_request_bytes": 4096}, True)],
    ids=["file-over-max-file-bytes", "streamed-body-over-request-limit"],
)
async def test_too_large_is_413_and_nothing_staged(
    pipeline: Pipeline, pictures: list[Path], redis_client: Redis, limits: dict[str, int], chunked: bool
) -> None:
    settings = tokens(pipeline.settings, **limits)
    big = pictures[0].read_bytes()
    assert len(big) > 5000
    with serve(settings) as api:
        if chunked:  # no Content-Length: the limit is found while streaming
            request = api.build_request("POST", "/api/upload", files=[("file", ("big.jpg", big, "image/jpeg"))])
            body = request.read()
            boundary = request.headers["content-type"]

            def pieces() -> Iterator[bytes]:
                for start in range(0, len(body), 1024):
                    yield body[start : start + 1024]

            headers = {**auth(ADMIN), "content-type": boundary}
            response = api.post("/api/upload", content=pieces(), headers=headers)
        else:
            response = post(api, [("file", ("big.jpg", big, "image/jpeg"))])
        assert response.status_code == 413, response.text
        assert "larger than" in response.json()["error"]
    assert staged(settings) == []
    assert await redis_client.xlen(keys.INGEST_STREAM) == 0


async def test_too_many_files_is_refused_and_nothing_staged(
    pipeline: Pipeline, pictures: list[Path], redis_client: Redis
) -> None:
    settings = tokens(pipeline.settings, upload_max_files=2)
    with serve(settings) as api:
        response = post(api, files_of(pictures))
        assert response.status_code == 400, response.text
        assert "at most 2 files" in response.json()["error"]
        assert staged(settings) == []
        assert await redis_client.xlen(keys.INGEST_STREAM) == 0


async def test_tokens(pipeline: Pipeline, pictures: list[Path], redis_client: Redis) -> None:
    with serve(pipeline.settings) as api:  # no token configured: uploads are off
        assert api.post("/api/upload", files=files_of(pictures[:1])).status_code == 403
    settings = tokens(pipeline.settings, read_token=[SecretStr(READER)])
    with serve(settings) as api:
        assert api.post("/api/upload", files=files_of(pictures[:1])).status_code == 401
        assert post(api, files_of(pictures[:1]), token=READER).status_code == 401
        assert staged(settings) == []
        assert await redis_client.xlen(keys.INGEST_STREAM) == 0
        md5 = post(api, files_of(pictures[:1]), token=UPLOADER, wait="0").json()["files"][0]["ID"]
        # Private mode: the upload token may ask how its upload went, and read nothing else.
        assert api.get(f"/api/upload/{md5}", headers=auth(UPLOADER)).json()["status"] == "pending"
        assert api.get("/api/search", params={"query": "x"}, headers=auth(UPLOADER)).status_code == 401
        assert api.get(f"/api/upload/{md5}").status_code == 401


async def test_bad_form_fields_are_400_and_nothing_staged(pipeline: Pipeline, pictures: list[Path]) -> None:
    settings = tokens(pipeline.settings)
    with serve(settings) as api:
        for data in ({"rating": "very"}, {"wait": "999"}, {"source_url": "javascript:alert(1)"}):
            response = post(api, files_of(pictures[:1]), **data)
            assert response.status_code == 400, (data, response.text)
        assert api.post("/api/upload", json={"file": "x"}, headers=auth(ADMIN)).status_code == 415
        malformed = {**auth(ADMIN), "content-type": "multipart/form-data; boundary=xyz"}
        for body in (b"--xyz\r\nContent-Disposition: form-data; name=file; filename=a.jpg\r\n\r\n\xff\xd8\xff",
                     b"--xyz\r\ngarbage without headers", b"no boundary at all"):  # fmt: skip
            response = api.post("/api/upload", content=body, headers=malformed)
            assert response.status_code == 400, (body, response.text)
        assert staged(settings) == []


async def test_the_api_sweeps_staged_files_of_indexed_uploads_no_one_asked_about(
    pipeline: Pipeline, pictures: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload, "SWEEP_SECONDS", 0.1)
    settings = tokens(pipeline.settings)
    with serve(settings) as api:
        response = post(api, files_of(pictures[:2]), wait="0")
        assert [r["status"] for r in response.json()["files"]] == ["pending", "pending"]
        assert len(staged(settings)) == 2
        # A request's partial file left long ago (its api died mid-upload) goes too.
        old = settings.upload_staging_dir / ".part-0123456789abcdef"
        old.write_bytes(b"half a picture")
        os.utime(old, (time.time() - upload.STALE_SECONDS - 60,) * 2)
        await pipeline.drain()  # indexed; nobody asks GET /api/upload/{md5}
        for _ in range(200):
            if not staged(settings):
                break
            await asyncio.sleep(0.05)
        assert staged(settings) == []
        assert len(search_ids(api, "")) == 2
