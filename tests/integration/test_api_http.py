"""The api's HTTP surface beyond GraphQL: files (types, ETag, ranges), the query language over REST, CORS,
OpenAPI docs, imgproxy links, and a fuzz of every REST route the OpenAPI schema lists."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from paktum_api.imgproxy import sign_path
from paktum_common.contracts import Rating
from paktum_common.settings import Settings
from paktum_scraper.local import ImportReport, local_posts
from tests.imagefiles import good_images
from tests.integration.apiserver import serve
from tests.integration.pipeline import Pipeline


@pytest.fixture
def api(indexed: Settings) -> Iterator[httpx.Client]:
    with serve(indexed) as client:
        yield client


def one(api: httpx.Client, query: str) -> dict[str, object]:
    result: dict[str, object] = api.get("/api/search", params={"query": query, "limit": 1}).json()["results"][0]
    return result


def test_images_have_types_etags_and_ranges(indexed: Settings, api: httpx.Client) -> None:
    image = one(api, "cat")
    url, data = str(image["URL"]), (indexed.images_dir / str(image["Filename"])).read_bytes()
    full = api.get(url)
    assert full.content == data
    assert full.headers["etag"] == f'"{image["ID"]}"' and "immutable" in full.headers["cache-control"]
    assert api.get(url, headers={"If-None-Match": full.headers["etag"]}).status_code == 304
    assert api.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    part = api.get(url, headers={"Range": "bytes=10-29"})
    assert part.status_code == 206 and part.content == data[10:30]
    assert part.headers["content-range"] == f"bytes 10-29/{len(data)}"
    assert api.get(url, headers={"Range": f"bytes={len(data) + 5}-"}).status_code == 416
    head = api.head(url)
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(data))
    thumb = api.get(str(image["ThumbnailURL"]))
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"
    assert thumb.headers["etag"] != full.headers["etag"]


def test_each_format_has_its_content_type(api: httpx.Client) -> None:
    expected = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp", "bmp": "image/bmp"}
    results = api.get("/api/search", params={"query": "animal", "limit": 50}).json()["results"]
    seen = set()
    for image in results:
        extension = image["Filename"].rpartition(".")[2]
        assert api.get(image["URL"]).headers["content-type"] == expected[extension]
        seen.add(extension)
    assert len(seen) >= 3  # the test images come in several formats


@pytest.mark.parametrize(
    ("extension", "content_type"),
    [("webm", "video/webm"), ("mp4", "video/mp4"), ("avif", "image/avif"), ("tiff", "image/tiff")],
)
def test_every_stored_media_type_is_served_as_itself(settings: Settings, extension: str, content_type: str) -> None:
    # The hasher stores a video post as the video (it indexes its first frame): it must not come back as bytes.
    name = f"{'ab' * 16}.{extension}"
    settings.images_dir.mkdir(parents=True)
    settings.images_dir.joinpath(name).write_bytes(b"\x00" * 64)
    with serve(settings) as api:
        response = api.get(f"/images/{name}")
    assert response.status_code == 200 and response.headers["content-type"] == content_type


@pytest.mark.parametrize(
    "path",
    [
        "/images/..%2F..%2Fetc%2Fpasswd",
        "/images/%2e%2e/search.sqlite3",
        "/images/../search.sqlite3",
        "/images/" + "0" * 32 + ".png",
        "/images/" + "A" * 32 + ".png",
        "/images/.%2e",
        "/thumbnails/..%2Fimages",
        "/thumbnails/" + "0" * 32 + ".png",
        "/images/%00.png",
    ],
)
def test_path_traversal_is_refused(api: httpx.Client, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404 and b"root:" not in response.content


@pytest.mark.parametrize(
    ("query", "total"),
    [
        ("animal", 9),
        ("cat,rating:s", 6),
        ("animal,-cat", 3),
        ("~cat,~dog", 9),
        ("cat_*", 6),
        ("width:>300", 6),
        ("animal,height:200", 3),
        ('"ears"', 6),
        ("animal,order:-added", 9),
        ("nothing_has_this", 0),
    ],
)
def test_rest_search_speaks_the_query_language(api: httpx.Client, query: str, total: int) -> None:
    body = api.get("/api/search", params={"query": query, "limit": 50}).json()
    assert body["error"] == "" and body["total_hits"] == total == len(body["results"])


def test_rest_points_at_the_bad_term(api: httpx.Client) -> None:
    body = api.get("/api/search", params={"query": "cat,width:>big"}).json()
    assert body["error"].startswith("'width:>big' at character 5: width: needs a whole number")


def test_rest_order_by_added(api: httpx.Client) -> None:
    for order, reverse in (("order:added", False), ("order:-added", True)):
        results = api.get("/api/search", params={"query": f"animal {order}", "limit": 50}).json()["results"]
        added = [(int(r["Added"]), r["ID"]) for r in results]
        assert [a for a, _ in added] == sorted((a for a, _ in added), reverse=reverse)


def test_cors_is_off_by_default_and_follows_the_setting(indexed: Settings, api: httpx.Client) -> None:
    origin = {"Origin": "https://gallery.example"}
    assert "access-control-allow-origin" not in api.get("/api/search", headers=origin).headers
    settings = indexed.model_copy(update={"cors_origins": ["https://gallery.example", "https://b.example"]})
    with serve(settings) as cors_api:
        allowed = cors_api.get("/api/search", headers=origin)
        assert allowed.headers["access-control-allow-origin"] == "https://gallery.example"
        preflight = cors_api.options(
            "/query",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert (
            preflight.status_code == 200
            and "authorization" in preflight.headers["access-control-allow-headers"].lower()
        )
        other = cors_api.get("/api/search", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_openapi_docs(api: httpx.Client) -> None:
    assert api.get("/docs").status_code == 200
    schema = api.get("/openapi.json").json()
    assert {"/api/search", "/api/image/{image_id}", "/api/image/{image_id}/related", "/images/{filename}"} <= set(
        schema["paths"]
    )
    params = {p["name"] for p in schema["paths"]["/api/search"]["get"]["parameters"]}
    assert params == {"query", "q", "limit"}


# Values a fuzzer tries first: empty, huge, negative, non-ASCII, control and syntax characters of our language.
NASTY = [
    "",
    "0",
    "-1",
    "51",
    "9" * 30,
    "a" * 5000,
    "é",
    "\x00",
    "%",
    "../..",
    '"',
    "-",
    "~",
    "*",
    ",,,",
    "rating:",
    "width:>",
]


def test_every_rest_route_survives_nasty_values(api: httpx.Client) -> None:
    """A small fuzz driven by the OpenAPI schema: every path and query parameter, never a server error."""
    schema = api.get("/openapi.json").json()
    requests = 0
    for path, operations in schema["paths"].items():
        for parameters in (operations.get("get", {}).get("parameters", []),):
            in_path = [p["name"] for p in parameters if p["in"] == "path"]
            in_query = [p["name"] for p in parameters if p["in"] == "query"]
            for value, other in itertools.product(NASTY, ["", "cat", "5"]):
                url = path
                for name in in_path:
                    url = url.replace("{" + name + "}", httpx.URL("", params={"v": value}).query.decode()[2:] or "x")
                params = {name: (value if n == 0 else other) for n, name in enumerate(in_query)}
                response = api.get(url, params=params)
                requests += 1
                assert response.status_code < 500, (url, params, response.text[:200])
    assert requests > 200


async def test_thumbnail_url_is_signed_imgproxy_when_configured(tmp_path: Path, pipeline: Pipeline) -> None:
    good_images(tmp_path / "one", 1)
    await pipeline.queue.publish_posts(local_posts(tmp_path / "one", ["x"], Rating.safe, ImportReport()))
    await pipeline.drain()
    key, salt = "ab" * 32, "cd" * 32
    settings = pipeline.settings.model_copy(
        update={
            "imgproxy_url": "https://img.example.com",
            "imgproxy_key": SecretStr(key),
            "imgproxy_salt": SecretStr(salt),
        }
    )
    with serve(settings) as api:
        rest = one(api, "x")
        graphql = api.post("/query", json={"query": "{ randomImage { ThumbnailUrl Url } }"}).json()["data"]
    thumbnail = str(rest["ThumbnailURL"])
    assert graphql["randomImage"]["ThumbnailUrl"] == thumbnail
    assert graphql["randomImage"]["Url"] == rest["URL"]  # the original stays our own direct link
    signature, path = thumbnail.removeprefix("https://img.example.com/").split("/", 1)
    assert signature == sign_path(bytes.fromhex(key), bytes.fromhex(salt), "/" + path)
    assert path.startswith("rs:fit:480:480/")
