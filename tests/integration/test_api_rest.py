"""The REST API over real HTTP on loopback, on an index the real hasher filled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from paktum_cli.embedded_redis import free_port
from paktum_common.settings import Settings
from paktum_common.store import ImageStore
from tests.integration.apiserver import serve

ORIGINAL_FIELDS = {"ID", "URL", "Tags", "Tagstring", "Rating", "Added", "PHash", "Size", "Width", "Height", "Filename"}


@pytest.fixture(scope="module")
def api(indexed: Settings) -> Iterator[httpx.Client]:
    """The api over the module's one filled index (6 cats, 3 dogs): these tests only read."""
    with serve(indexed) as client:
        yield client


def test_search_shape_and_fields(indexed: Settings, api: httpx.Client) -> None:
    response = api.get("/api/search", params={"query": "cat,animal", "limit": 4})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "error", "total_hits"}
    assert body["error"] == "" and body["total_hits"] == 6 and len(body["results"]) == 4
    for image in body["results"]:
        assert ORIGINAL_FIELDS | {"ThumbnailURL"} <= set(image)
        assert isinstance(image["PHash"], int) and 0 <= image["PHash"] < 2**64
        assert image["Rating"] == "safe" and image["Added"].isdigit()
        assert image["URL"] == f"{api.base_url}/images/{image['Filename']}"
        stored = ImageStore.from_settings(indexed).image_path(image["Filename"])
        assert api.get(image["URL"]).content == stored.read_bytes()
        thumb = api.get(image["ThumbnailURL"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


def test_search_accepts_q_defaults_to_ten_and_shuffles(api: httpx.Client) -> None:
    assert api.get("/api/search", params={"q": "dog"}).json()["total_hits"] == 3
    everything = api.get("/api/search", params={"query": "animal"}).json()
    assert everything["total_hits"] == 9 and len(everything["results"]) == 9
    orders = {tuple(r["ID"] for r in api.get("/api/search?query=animal").json()["results"]) for _ in range(20)}
    assert len(orders) > 1


@pytest.mark.parametrize(
    ("limit", "reason"),
    [("0", "from 1 to 50"), ("51", "from 1 to 50"), ("-3", "from 1 to 50"), ("ten", "whole number")],
)
def test_search_rejects_bad_limits(api: httpx.Client, limit: str, reason: str) -> None:
    response = api.get("/api/search", params={"query": "cat", "limit": limit})
    assert response.status_code == 400
    assert reason in response.json()["error"] and response.json()["results"] == []


def test_search_rejects_a_malformed_query(api: httpx.Client) -> None:
    response = api.get("/api/search", params={"query": "cat,rating:nsfw"})
    assert response.status_code == 400 and "unknown rating 'nsfw'" in response.json()["error"]


def test_image_and_related(api: httpx.Client) -> None:
    some = api.get("/api/search?query=dog&limit=1").json()["results"][0]
    body = api.get(f"/api/image/{some['ID']}").json()
    assert body == {"image": some, "error": ""}
    assert (some["Width"], some["Height"]) == (300, 200)
    assert api.get(f"/api/image/{some['ID']}/related").json() == {
        "results": [],
        "distances": [],
        "transforms": [],
        "error": "",
    }


def test_unknown_image_is_404_with_an_error(api: httpx.Client) -> None:
    for path in ("/api/image/" + "0" * 32, "/api/image/nope/related"):
        response = api.get(path)
        assert response.status_code == 404 and "no image with ID" in response.json()["error"]


@pytest.mark.parametrize(
    "path",
    ["/images/..%2Fsearch.sqlite3", "/images/" + "0" * 32 + ".jpg", "/thumbnails/../redis.url", "/images/.hidden"],
)
def test_files_outside_the_store_are_not_served(api: httpx.Client, path: str) -> None:
    assert api.get(path).status_code == 404


def test_health_readiness_and_metrics(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}
    api.get("/api/search?query=cat")
    text = api.get("/metrics").text
    assert "paktum_api_indexed_images 9.0" in text
    assert "paktum_api_ingest_waiting_entries 0.0" in text
    assert 'paktum_api_requests_total{route="/api/search",status="200"}' in text


def test_readiness_fails_when_redis_is_gone(tmp_path: Path) -> None:
    with serve(Settings(data_dir=tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")) as api:
        response = api.get("/readyz")
        assert response.status_code == 503 and "redis" in response.json()["problems"]
        assert api.get("/healthz").status_code == 200
