"""GraphQL at /query over real HTTP, on an index the real hasher filled: original names, extras, limits, admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query
from pydantic import SecretStr
from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.banned import banned_tags_now
from paktum_common.settings import Settings
from tests.integration.apiserver import serve
from tests.integration.gallery_data import fill
from tests.integration.pipeline import Pipeline

TOKEN = "s3cret-admin-token"
ORIGINAL_FIELDS = "ID Url ThumbnailUrl Tags Tagstring Rating Added PHash Size Width Height Filename"
# What the original Paktum's web client asks for (its randomImage, image and searchImages queries).
CLIENT_RANDOM = f"query {{ randomImage {{ {ORIGINAL_FIELDS} Related {{ {ORIGINAL_FIELDS} }} }} }}"


@pytest.fixture
def api(indexed: Settings) -> Iterator[httpx.Client]:
    with serve(indexed.model_copy(update={"admin_token": SecretStr(TOKEN)})) as client:
        yield client


@pytest.fixture
async def filled(tmp_path: Path, pipeline: Pipeline) -> Pipeline:
    """An index of its own, for a test that changes it."""
    return await fill(tmp_path / "in", pipeline)


def gql(api: httpx.Client, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = api.post("/query", json={"query": query, "variables": variables or {}}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def data(api: httpx.Client, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
    body = gql(api, query, variables, token)
    assert "errors" not in body, body["errors"]
    return body["data"]


def error(api: httpx.Client, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> str:
    body = gql(api, query, variables, token)
    assert body.get("errors"), body
    return " | ".join(e["message"] for e in body["errors"])


def test_the_original_clients_queries_work_unchanged(api: httpx.Client) -> None:
    image = data(api, CLIENT_RANDOM)["randomImage"]
    assert set(image) == {*ORIGINAL_FIELDS.split(), "Related"}
    assert image["Related"] == []  # no variant groups until the cleanup job has run
    by_id = data(api, f'query {{ image(ID:"{image["ID"]}") {{ {ORIGINAL_FIELDS} Related {{ ID }} }} }}')["image"]
    assert {k: v for k, v in by_id.items() if k != "Related"} == {k: v for k, v in image.items() if k != "Related"}
    assert image["PHash"].isdigit() and 0 <= int(image["PHash"]) < 2**64
    assert image["Url"] == f"{api.base_url}/images/{image['Filename']}"
    assert api.get(image["Url"]).status_code == 200 and api.get(image["ThumbnailUrl"]).status_code == 200
    assert image["Tagstring"] == " ".join(image["Tags"]) and image["Added"].isdigit()
    search = data(
        api, f'query {{ searchImages(query:"cat", limit:4, shuffle:true, rating:safe) {{ {ORIGINAL_FIELDS} }} }}'
    )
    assert len(search["searchImages"]) == 4
    assert all("cat" in i["Tags"] and i["Rating"] == "safe" for i in search["searchImages"])


def test_schema_keeps_the_original_names(api: httpx.Client) -> None:
    schema = data(api, get_introspection_query())["__schema"]
    types = {t["name"]: t for t in schema["types"]}
    original = set(ORIGINAL_FIELDS.split())
    assert original | {"Related"} <= {f["name"] for f in types["Image"]["fields"]}
    assert original <= {f["name"] for f in types["NestedImage"]["fields"]}
    assert "Related" not in {f["name"] for f in types["NestedImage"]["fields"]}
    assert [v["name"] for v in types["Rating"]["enumValues"]] == ["explicit", "questionable", "safe", "general"]
    assert {f["name"] for f in types["ServerStats"]["fields"]} == {"Version", "ImageCount", "GroupCount", "Uptime"}
    query = {f["name"]: f for f in types["Query"]["fields"]}
    assert {"image", "randomImage", "searchImages", "ServerStats", "serverStats", "paginatedSearch"} <= set(query)
    args = {a["name"]: a["type"] for a in query["searchImages"]["args"]}
    assert list(args) == ["query", "limit", "shuffle", "rating"]
    assert args["limit"]["kind"] == "NON_NULL" and args["shuffle"]["kind"] == "SCALAR"
    assert [a["name"] for a in query["paginatedSearch"]["args"]] == ["query", "limit", "page", "rating"]
    assert [a["name"] for a in query["image"]["args"]] == ["ID"]


def test_search_language_and_the_rating_argument(api: httpx.Client) -> None:
    def ids(query: str, **extra: Any) -> set[str]:
        args = ", ".join(f"{k}: {v}" for k, v in extra.items())
        found = data(
            api,
            f"query($q: String!) {{ searchImages(query: $q, limit: 100{', ' + args if args else ''}) {{ ID }} }}",
            {"q": query},
        )
        return {i["ID"] for i in found["searchImages"]}

    cats, dogs = ids("cat"), ids("dog")
    assert len(cats) == 6 and len(dogs) == 3
    assert ids("animal -cat") == dogs
    assert ids("~cat ~dog") == cats | dogs
    assert ids("ca*") == cats and ids("animal -ca*") == dogs
    assert ids("width:<640") == dogs and ids("width:>=640,height:480") == cats
    assert ids("rating:safe") == cats and ids("animal", rating="general") == dogs
    assert ids("rating:safe", rating="general") == set()  # the argument and the query must both hold
    assert ids('"ears"') == cats  # full text finds the word inside the tag cat_ears


def test_shuffle_false_is_newest_first_and_shuffle_true_varies(api: httpx.Client) -> None:
    q = 'query($s: Boolean) { searchImages(query: "animal", limit: 9, shuffle: $s) { ID Added } }'
    ordered = data(api, q, {"s": False})["searchImages"]
    added = [int(i["Added"]) for i in ordered]
    assert added == sorted(added, reverse=True)
    orders = {tuple(i["ID"] for i in data(api, q)["searchImages"]) for _ in range(15)}
    assert len(orders) > 1


def test_pages_cover_every_hit_once_and_report_the_total(api: httpx.Client) -> None:
    seen: list[str] = []
    page, more = 1, True
    while more:
        found = data(
            api,
            'query($p: Int!) { imageSearch(query: "animal", limit: 4, page: $p) { Total Page HasMore Images { ID } } }',
            {"p": page},
        )["imageSearch"]
        assert found["Total"] == 9 and found["Page"] == page
        seen += [i["ID"] for i in found["Images"]]
        more, page = found["HasMore"], page + 1
    assert len(seen) == 9 == len(set(seen)) and page == 4
    paginated = [
        i["ID"]
        for p in (1, 2, 3)
        for i in data(api, f'query {{ paginatedSearch(query: "animal", limit: 4, page: {p}) {{ ID }} }}')[
            "paginatedSearch"
        ]
    ]
    assert paginated == seen


def test_tag_autocomplete_counts(api: httpx.Client) -> None:
    tags = data(api, 'query { tags(prefix: "Ca", limit: 5) { Name Count } }')["tags"]
    assert tags == [{"Name": "cat", "Count": 6}, {"Name": "cat_ears", "Count": 6}]
    assert data(api, 'query { tags(prefix: "a") { Name Count } }')["tags"] == [{"Name": "animal", "Count": 9}]
    assert data(api, 'query { tags(prefix: "zzz") { Name } }')["tags"] == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('{ searchImages(query: "cat rating:nsfw", limit: 5) { ID } }', "'rating:nsfw' at character 5: unknown rating"),
        ('{ searchImages(query: "cat", limit: 0) { ID } }', "limit must be between 1 and 100, got 0"),
        ('{ searchImages(query: "cat", limit: 101) { ID } }', "limit must be between 1 and 100, got 101"),
        ('{ paginatedSearch(query: "cat", limit: 5, page: 0) { ID } }', "page must be between 1"),
        ('{ imageSearch(query: "a -", limit: 5) { Total } }', "'-' must be followed by a tag"),
        ('{ tags(prefix: "a", limit: 500) { Name } }', "limit must be between 1 and 50"),
        ('{ image(ID: "x") { Nope } }', "Cannot query field 'Nope'"),
        ("{ searchImages(", "Syntax Error"),
    ],
)
def test_bad_requests_are_graphql_errors_not_server_errors(api: httpx.Client, query: str, message: str) -> None:
    assert message in error(api, query)


def test_unknown_image_is_null(api: httpx.Client) -> None:
    assert data(api, '{ image(ID: "%s") { ID } }' % ("0" * 32))["image"] is None


def test_cost_and_depth_limits_refuse_before_running(api: httpx.Client) -> None:
    big = f'searchImages(query: "animal", limit: 100) {{ {ORIGINAL_FIELDS} Related {{ {ORIGINAL_FIELDS} }} }}'
    assert len(data(api, f"{{ {big} }}")["searchImages"]) == 9  # one full page with related is fine
    message = error(api, "{ " + " ".join(f"a{n}: {big}" for n in range(3)) + " }")
    assert "query cost" in message and "above the limit of 50000" in message
    fields = f"{ORIGINAL_FIELDS} Related {{ {ORIGINAL_FIELDS} }}"
    aliased = " ".join(f'a{n}: searchImages(query: "x", limit: $n) {{ {fields} }}' for n in range(3))
    by_variable = "query($n: Int!) { " + aliased + " }"
    assert "query cost" in error(api, by_variable, {"n": 100})
    assert "errors" not in gql(api, by_variable, {"n": 2})
    # Fragments are priced where they are spread.
    fragment = f"fragment F on Image {{ {ORIGINAL_FIELDS} Related {{ {ORIGINAL_FIELDS} }} }} "
    spread = (
        fragment + "{ " + " ".join(f'a{n}: searchImages(query: "x", limit: 100) {{ ...F }}' for n in range(3)) + " }"
    )
    assert "query cost" in error(api, spread)
    aliases = "{ " + " ".join(f"a{n}: randomImage {{ ID }}" for n in range(30)) + " }"
    assert "aliases" in error(api, aliases)


def test_depth_limit(indexed: Settings) -> None:
    with serve(indexed.model_copy(update={"graphql_max_depth": 2})) as api:
        deep = '{ imageSearch(query: "", limit: 1) { Images { Related { ID } } } }'
        assert "exceeds maximum operation depth of 2" in error(api, deep)
        assert data(api, "{ randomImage { Related { ID } } }")["randomImage"]["Related"] == []
        assert "__schema" in data(api, get_introspection_query())  # GraphiQL's own query is not limited


@pytest.mark.parametrize("field", ["ServerStats", "serverStats"])
def test_server_stats_needs_the_admin_token(api: httpx.Client, field: str, redis_url: str) -> None:
    # redis_url empties the session's Redis: groups other tests left there must not count here.
    query = f"{{ {field} {{ Version ImageCount GroupCount Uptime }} }}"
    assert "needs the admin token" in error(api, query)
    assert "needs the admin token" in error(api, query, token=TOKEN + "x")
    response = api.post("/query", json={"query": query}, headers={"Authorization": TOKEN})  # no scheme
    assert "needs the admin token" in response.json()["errors"][0]["message"]
    stats = data(api, query, token=TOKEN)[field]
    assert stats["ImageCount"] == 9 and stats["GroupCount"] == 0
    assert stats["Version"] and stats["Uptime"].endswith("s")


def test_admin_features_are_off_without_a_token(indexed: Settings) -> None:
    with serve(indexed) as api:
        assert "PAKTUM_ADMIN_TOKEN is not set" in error(api, "{ ServerStats { Version } }", token="anything")
        assert "PAKTUM_ADMIN_TOKEN is not set" in error(api, 'mutation { banTag(tag: "x") }', token="anything")


async def test_admin_mutations(filled: Pipeline, redis_client: Redis) -> None:
    with serve(filled.settings.model_copy(update={"admin_token": SecretStr(TOKEN)})) as api:
        await _admin_mutations(filled, api, redis_client)


async def _admin_mutations(filled: Pipeline, api: httpx.Client, redis_client: Redis) -> None:
    victim, other = [i["ID"] for i in data(api, '{ searchImages(query: "dog", limit: 2) { ID } }')["searchImages"]]
    assert "needs the admin token" in error(api, f'mutation {{ deleteImage(ID: "{victim}") }}')

    filename = (await filled.search.get_document(victim)).Filename  # type: ignore[union-attr]
    assert data(api, f'mutation {{ deleteImage(ID: "{victim}") }}', token=TOKEN) == {"deleteImage": True}
    assert data(api, f'mutation {{ deleteImage(ID: "{victim}") }}', token=TOKEN) == {"deleteImage": False}
    assert data(api, f'{{ image(ID: "{victim}") {{ ID }} }}')["image"] is None
    assert api.get(f"/images/{filename}").status_code == 404 and api.get(f"/thumbnails/{victim}.jpg").status_code == 404
    assert not filled.store.image_path(filename).exists()

    assert data(api, 'mutation { banTag(tag: "Gore Stuff") }', token=TOKEN) == {"banTag": "gore_stuff"}
    assert "gore_stuff" in await banned_tags_now(redis_client, filled.settings)
    assert data(api, 'mutation { unbanTag(tag: "gore_stuff") }', token=TOKEN) == {"unbanTag": True}
    assert "gore_stuff" not in await banned_tags_now(redis_client, filled.settings)
    assert "not a tag" in error(api, 'mutation { banTag(tag: "  ") }', token=TOKEN)

    a, b = [i["ID"] for i in data(api, '{ searchImages(query: "cat", limit: 2) { ID } }')["searchImages"]]
    marked = f'mutation {{ markNotVariants(ID: "{b}", OtherID: "{a.upper()}") }}'
    assert data(api, marked, token=TOKEN) == {"markNotVariants": True}
    assert data(api, marked, token=TOKEN) == {"markNotVariants": False}
    assert await redis_client.smembers(keys.NOT_VARIANTS) == {":".join(sorted((a, b)))}
    assert "no image with ID" in error(
        api, f'mutation {{ markNotVariants(ID: "{a}", OtherID: "{victim}") }}', token=TOKEN
    )
    assert "not a variant of itself" in error(
        api, f'mutation {{ markNotVariants(ID: "{a}", OtherID: "{a}") }}', token=TOKEN
    )

    entry = data(api, 'mutation { startScrape(queries: ["Hug  solo", "cat_ears"], source: "gelbooru") }', token=TOKEN)
    [(entry_id, fields)] = await redis_client.xrange(keys.SCRAPE_REQUESTS)
    assert entry["startScrape"] == entry_id
    assert fields["queries"] == "hug solo\ncat_ears" and fields["source"] == "gelbooru"
    assert "at least one tag query" in error(api, 'mutation { startScrape(queries: [" "]) }', token=TOKEN)
    assert other


def test_mutations_are_not_allowed_over_get(api: httpx.Client) -> None:
    response = api.get("/query", params={"query": 'mutation { banTag(tag: "x") }'})
    assert response.status_code in (400, 405)


def test_graphiql_is_served_to_browsers(api: httpx.Client) -> None:
    response = api.get("/query", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()
    assert 'href="/query"' in api.get("/").text


def test_graphql_requests_are_measured_and_logged(api: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="paktum.api.access"):
        data(api, "{ randomImage { ID } }")
    error(api, '{ searchImages(query: "rating:nope", limit: 1) { ID } }')
    error(api, "{ madeUpField }")
    metrics = api.get("/metrics").text
    assert 'paktum_api_requests_total{route="/query",status="200"}' in metrics
    assert 'paktum_api_graphql_fields_total{field="randomImage",outcome="ok"}' in metrics
    assert 'paktum_api_graphql_fields_total{field="searchImages",outcome="error"}' in metrics
    assert "madeUpField" not in metrics
    [record] = [r for r in caplog.records if r.name == "paktum.api.access" and getattr(r, "route", "") == "/query"]
    assert (record.method, record.status) == ("POST", 200)  # type: ignore[attr-defined]


def test_related_is_fetched_once_per_request(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    import paktum_api.graphql.context as context_module

    real = context_module.related_details
    batches: list[list[str]] = []

    async def counting(redis: Redis, ids: list[str], max_distance: int | None = None) -> Any:
        batches.append(list(ids))
        return await real(redis, ids, max_distance)  # the real lookup; only the number of calls is observed

    monkeypatch.setattr(context_module, "related_details", counting)
    found = data(api, '{ searchImages(query: "animal", limit: 9) { ID Related { ID Distance } } }')["searchImages"]
    assert len(found) == 9 and all(image["Related"] == [] for image in found)
    assert len(batches) == 1 and sorted(batches[0]) == sorted(image["ID"] for image in found)


def test_an_empty_index_answers_with_errors_not_failures(settings: Settings) -> None:
    with serve(settings) as api:
        body = gql(api, "{ randomImage { ID } }")
        assert body["data"] is None and body["errors"][0]["message"] == "no images are indexed yet"
        assert data(api, '{ imageSearch(query: "x", limit: 5) { Total HasMore Images { ID } } }') == {
            "imageSearch": {"Total": 0, "HasMore": False, "Images": []}
        }
        assert data(api, '{ tags(prefix: "x") { Name } }') == {"tags": []}
