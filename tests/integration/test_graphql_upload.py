"""GraphQL uploads (the GraphQL multipart request spec) over real HTTP into real Redis, handled by the real
hasher: indexed and searchable, exists, uploadStatus; tokens and CSRF headers; the upload limits (not /query's
JSON limit); hostile forms (missing parts, malformed operations and map); staging left empty every time."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.settings import Settings
from tests.imagefiles import good_images
from tests.integration.apiserver import serve
from tests.integration.pipeline import Pipeline

ADMIN = "gql-upload-admin-s3cret"
UPLOADER = "gql-upload-only-t0ken"
READER = "gql-reader-t0ken"
PREFLIGHT = {"GraphQL-Preflight": "1"}
UPLOAD = """mutation Up($files: [Upload!]!, $tags: [String!], $wait: Float) {
  uploadImages(files: $files, tags: $tags, rating: safe, wait: $wait) { filename ID status reason }
}"""
STATUS = "query S($id: String!) { uploadStatus(ID: $id) { ID status reason } }"


def headers(token: str | None = ADMIN, preflight: bool = True) -> dict[str, str]:
    given = {"Authorization": f"Bearer {token}"} if token else {}
    return {**given, **(PREFLIGHT if preflight else {})}


def tokens(settings: Settings, **changes: object) -> Settings:
    update = {"admin_token": SecretStr(ADMIN), "upload_token": SecretStr(UPLOADER)}
    return settings.model_copy(update={**update, **changes})


def staged(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.upload_staging_dir.iterdir())


def operations(count: int, **variables: object) -> str:
    return json.dumps({"query": UPLOAD, "variables": {"files": [None] * count, **variables}})


def spec_form(paths: list[Path], **variables: object) -> tuple[dict[str, str], list[Any]]:
    """`operations` and `map` (form fields, sent first), then one file part per picture."""
    files_map = {str(i): [f"variables.files.{i}"] for i in range(len(paths))}
    data = {"operations": operations(len(paths), **variables), "map": json.dumps(files_map)}
    parts = [(str(i), (p.name, p.read_bytes(), "application/octet-stream")) for i, p in enumerate(paths)]
    return data, parts


def post(api: httpx.Client, paths: list[Path], head: dict[str, str] | None = None, **variables: Any) -> httpx.Response:
    data, parts = spec_form(paths, **variables)
    return api.post("/query", data=data, files=parts, headers=headers() if head is None else head)


def raw_post(api: httpx.Client, body: bytes, head: dict[str, str] | None = None) -> httpx.Response:
    content_type = {"content-type": "multipart/form-data; boundary=XyZ"}
    return api.post("/query", content=body, headers={**(headers() if head is None else head), **content_type})


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--XyZ\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


def body_of(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--XyZ--\r\n"


def gql(api: httpx.Client, query: str, token: str = ADMIN, **variables: Any) -> dict[str, Any]:
    response = api.post("/query", json={"query": query, "variables": variables}, headers=headers(token))
    return response.json()


@pytest.fixture
def pictures(tmp_path: Path) -> list[Path]:
    return good_images(tmp_path / "pictures", 3)


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


async def test_upload_pending_then_indexed_searchable_then_exists(pipeline: Pipeline, pictures: list[Path]) -> None:
    # /query's JSON limit is 1 KiB here: a multipart upload is held to the upload limits instead.
    settings = tokens(pipeline.settings, api_max_body_bytes=1024)
    with serve(settings) as api:
        response = post(api, pictures[:2], tags=["Sea side", "holiday"], wait=0)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert "errors" not in answer, answer
        md5s = [md5_of(p) for p in pictures[:2]]
        files = answer["data"]["uploadImages"]
        assert [(f["filename"], f["ID"], f["status"]) for f in files] == [
            (pictures[0].name, md5s[0], "pending"),
            (pictures[1].name, md5s[1], "pending"),
        ]
        assert len(staged(settings)) == 2  # the hasher's to read now

        await pipeline.drain()
        for md5 in md5s:
            status = gql(api, STATUS, UPLOADER, id=md5)["data"]["uploadStatus"]
            assert status == {"ID": md5, "status": "indexed", "reason": ""}
        assert staged(settings) == []
        found = api.get("/api/search", params={"query": "sea_side holiday", "limit": 10}).json()["results"]
        assert {r["ID"] for r in found} == set(md5s)
        assert {r["Rating"] for r in found} == {"safe"}

        again = post(api, pictures[:1], headers(UPLOADER), wait=0)
        assert again.status_code == 200, again.text
        assert [(f["ID"], f["status"]) for f in again.json()["data"]["uploadImages"]] == [(md5s[0], "exists")]
        assert staged(settings) == []
        assert gql(api, STATUS, id="0" * 32)["data"]["uploadStatus"] is None


async def test_a_refused_file_says_why(pipeline: Pipeline, pictures: list[Path], redis_client: Redis) -> None:
    settings = tokens(pipeline.settings)
    await redis_client.sadd(keys.BANNED_MD5, md5_of(pictures[0]))
    with serve(settings) as api:
        answer = post(api, pictures[:1], wait=0).json()
        assert answer["data"]["uploadImages"][0]["status"] == "pending"
        await pipeline.drain()
        status = gql(api, STATUS, id=md5_of(pictures[0]))["data"]["uploadStatus"]
        assert status["status"] == "refused" and "banned" in status["reason"], status
        assert staged(settings) == []


@pytest.mark.parametrize(
    ("token", "preflight", "status", "says"),
    [
        (None, True, 401, "admin or upload token"),
        (READER, True, 401, "admin or upload token"),
        (UPLOADER, False, 400, "graphql-preflight"),
    ],
    ids=["no-token", "read-token", "no-preflight-header"],
)
async def test_who_and_how_is_checked_before_a_byte_is_staged(
    pipeline: Pipeline, pictures: list[Path], redis_client: Redis, token: str | None, preflight: bool, status: int,
    says: str,
) -> None:  # fmt: skip
    settings = tokens(pipeline.settings)
    with serve(settings) as api:
        response = post(api, pictures[:1], headers(token, preflight))
        assert response.status_code == status, response.text
        assert says in response.json()["errors"][0]["message"]
        # A session cookie is no token: a cross-site form cannot upload with it.
        cookie = {"Cookie": "paktum_session=anything", **PREFLIGHT}
        assert post(api, pictures[:1], cookie).status_code == 401
    assert staged(settings) == []
    assert await redis_client.xlen(keys.INGEST_STREAM) == 0


async def test_uploads_off_without_tokens(pipeline: Pipeline, pictures: list[Path]) -> None:
    with serve(pipeline.settings) as api:
        response = post(api, pictures[:1], headers("whatever"))
        assert response.status_code == 403, response.text
        assert "uploads are off" in response.json()["errors"][0]["message"]
    assert staged(pipeline.settings) == []


@pytest.mark.parametrize(
    ("limits", "chunked"),
    [
        ({"max_file_bytes": 5000}, False),
        ({"upload_max_request_bytes": 4096}, False),
        ({"upload_max_request_bytes": 4096}, True),
    ],
    ids=["file-over-max-file-bytes", "declared-body-over-request-limit", "streamed-body-over-request-limit"],
)
async def test_too_large_is_413_and_nothing_staged(
    pipeline: Pipeline, pictures: list[Path], redis_client: Redis, limits: dict[str, int], chunked: bool
) -> None:
    settings = tokens(pipeline.settings, **limits)
    assert pictures[0].stat().st_size > 5000
    with serve(settings) as api:
        data, parts = spec_form(pictures[:1])
        request = api.build_request("POST", "/query", data=data, files=parts, headers=headers())
        body = request.read()
        if chunked:  # no Content-Length: the limit is found while the body streams

            def pieces() -> Iterator[bytes]:
                for start in range(0, len(body), 1024):
                    yield body[start : start + 1024]

            head = {**headers(), "content-type": request.headers["content-type"]}
            response = api.post("/query", content=pieces(), headers=head)
        else:
            response = api.send(request)
        assert response.status_code == 413, response.text
        assert "larger than" in response.json()["errors"][0]["message"]
    assert staged(settings) == []
    assert await redis_client.xlen(keys.INGEST_STREAM) == 0


async def test_too_many_files_is_400_and_nothing_staged(
    pipeline: Pipeline, pictures: list[Path], redis_client: Redis
) -> None:
    settings = tokens(pipeline.settings, upload_max_files=2)
    with serve(settings) as api:
        response = post(api, pictures)
        assert response.status_code == 400, response.text
        assert "at most 2 files" in response.json()["errors"][0]["message"]
        # A map naming more files than that is refused before the first file part.
        many = json.dumps({str(i): [f"variables.files.{i}"] for i in range(3)})
        body = body_of(part("operations", operations(3).encode()), part("map", many.encode()),
                       part("0", pictures[0].read_bytes(), "a.jpg"))  # fmt: skip
        response = raw_post(api, body)
        assert response.status_code == 400, response.text
        assert "at most 2 files" in response.json()["errors"][0]["message"]
    assert staged(settings) == []
    assert await redis_client.xlen(keys.INGEST_STREAM) == 0


def _hostile_bodies(jpeg: bytes) -> list[tuple[str, bytes, str]]:
    ops = part("operations", operations(1).encode())
    one = part("map", b'{"0": ["variables.files.0"]}')
    beyond = part("map", b'{"0": ["variables.files.3"]}')
    two = part("map", b'{"0": ["variables.files.0"], "1": ["variables.x"]}')
    picture = part("0", jpeg, "a.jpg")
    return [
        ("map-names-a-missing-part", body_of(ops, two, picture), "does not have"),
        ("part-not-in-map", body_of(ops, one, picture, part("7", jpeg, "b.jpg")), "not in `map`"),
        ("file-before-operations", body_of(picture, ops, one), "come before the file parts"),
        ("no-operations", body_of(one, picture), "come before the file parts"),
        ("operations-not-json", body_of(part("operations", b"{query: nope"), one, picture), "not JSON"),
        ("operations-a-list", body_of(part("operations", b"[{}]"), one, picture), "JSON object"),
        ("operations-query-not-string", body_of(part("operations", b'{"query": 5}'), one, picture), "string"),
        ("map-not-json", body_of(ops, part("map", b"[nope"), picture), "`map`"),
        ("map-not-paths", body_of(ops, part("map", b'{"0": "variables.files.0"}'), picture), "JSON object like"),
        ("map-outside-variables", body_of(ops, part("map", b'{"0": ["query"]}'), picture), "only be a variable"),
        ("map-path-not-a-placeholder", body_of(ops, beyond, picture), "not a null placeholder"),
        ("part-sent-twice", body_of(ops, one, picture, picture), "sent twice"),
        ("unknown-field", body_of(part("tags", b"x"), ops, one, picture), "unexpected form field"),
        ("truncated", (ops + one + picture)[:-40], "ends inside a file"),
    ]


async def test_hostile_forms_are_400_with_the_reason_and_nothing_staged(
    pipeline: Pipeline, pictures: list[Path], redis_client: Redis
) -> None:
    settings = tokens(pipeline.settings)
    with serve(settings) as api:
        for name, body, says in _hostile_bodies(pictures[0].read_bytes()):
            response = raw_post(api, body)
            assert response.status_code == 400, (name, response.text)
            message = response.json()["errors"][0]["message"]
            assert says in message, (name, message)
            assert staged(settings) == [], name
    assert await redis_client.xlen(keys.INGEST_STREAM) == 0


async def test_files_not_taken_by_upload_images_are_removed(
    pipeline: Pipeline, pictures: list[Path], redis_client: Redis
) -> None:
    settings = tokens(pipeline.settings)
    with serve(settings) as api:
        # A well-formed request whose operation takes no file (invalid: $f is unused): the file goes at its end.
        ops = json.dumps({"query": 'query Q($f: Upload) { tags(prefix: "a") { Name } }', "variables": {"f": None}})
        form = {"operations": ops, "map": json.dumps({"0": ["variables.f"]})}
        parts = [("0", ("a.jpg", pictures[0].read_bytes(), "image/jpeg"))]
        response = api.post("/query", data=form, files=parts, headers=headers())
        assert "never used" in response.json()["errors"][0]["message"], response.text
        assert staged(settings) == []
        # uploadImages asked twice with one file (aliases): the second refuses, the file is published once.
        ops = json.dumps({
            "query": "mutation M($f: Upload!) { a: uploadImages(files: [$f], wait: 0) { status } "
            "b: uploadImages(files: [$f], wait: 0) { status } }",
            "variables": {"f": None},
        })  # fmt: skip
        form = {"operations": ops, "map": json.dumps({"0": ["variables.f"]})}
        answer = api.post("/query", data=form, files=parts, headers=headers()).json()
        assert "uploaded once" in answer["errors"][0]["message"], answer
        assert await redis_client.xlen(keys.INGEST_STREAM) == 1
        # Not an image: refused up front, nothing staged, nothing published.
        text = [("0", ("notes.jpg", b"just words, no picture", "image/jpeg"))]
        data, _ = spec_form(pictures[:1], wait=0)
        refused = api.post("/query", data=data, files=text, headers=headers()).json()["data"]["uploadImages"]
        assert refused[0]["status"] == "refused" and "not an image" in refused[0]["reason"]
        assert await redis_client.xlen(keys.INGEST_STREAM) == 1
        # As JSON, `files` can only be strings: refused, never read as paths.
        answer = gql(api, UPLOAD, files=[str(pictures[0])], wait=0)
        assert answer["data"] is None and "file parts of a multipart request" in answer["errors"][0]["message"]
        # The upload token may not read anything else through uploadImages' door.
        answer = gql(api, 'mutation { banTag(tag: "x") }', UPLOADER)
        assert "admin token" in answer["errors"][0]["message"]
    assert await redis_client.xlen(keys.INGEST_STREAM) == 1
    assert [name for name in staged(settings) if not name.startswith(md5_of(pictures[0]))] == []


async def test_private_mode_the_admin_token_uploads_through_graphql(
    pipeline: Pipeline, pictures: list[Path], redis_client: Redis
) -> None:
    settings = tokens(pipeline.settings, read_token=[SecretStr(READER)])
    with serve(settings) as api:
        # /query needs a read token first: the upload token alone is refused there (it uploads through REST) ...
        refused = post(api, pictures[:1], headers(UPLOADER))
        assert refused.status_code == 401 and "private mode" in refused.json()["errors"][0]["message"]
        # ... and a read token is no upload token.
        assert post(api, pictures[:1], headers(READER)).status_code == 401
        assert staged(settings) == [] and await redis_client.xlen(keys.INGEST_STREAM) == 0
        answer = post(api, pictures[:1], wait=0)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["uploadImages"][0]["status"] == "pending"
        assert await redis_client.xlen(keys.INGEST_STREAM) == 1
