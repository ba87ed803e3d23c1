"""scrapeStatus with the Redis-stream consumer (`paktum up`, clusters that opt out of Jobs): pending on the stream,
running once a consumer holds it, then the recorded outcome; over GraphQL and REST, with the admin token."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr
from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.settings import Settings
from paktum_scraper.scrape_requests import RequestServer
from tests.fixtures.booru.server import FixtureBooru, fixture_posts
from tests.integration.apiserver import serve
from tests.integration.scrape_settings import with_sources

TOKEN = "status-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STATUS = "query($id: String!) { scrapeStatus(ID: $id) { ID Status Reason Found Published QueryErrors Job } }"


def graphql(api: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    response = api.post("/query", json={"query": query, "variables": variables}, headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def status(api: httpx.Client, request_id: str) -> dict[str, Any]:
    body = graphql(api, STATUS, id=request_id)
    assert "errors" not in body, body
    answer: dict[str, Any] = body["data"]["scrapeStatus"]
    return answer


async def test_a_stream_request_is_pending_then_running_then_done_with_its_figures(
    settings: Settings, booru: FixtureBooru, redis_client: Redis
) -> None:
    booru.add(*fixture_posts(1, 4, ["hug"], "general"))
    settings = with_sources(settings.model_copy(update={"admin_token": SecretStr(TOKEN)}), {
        "gelbooru": {"url": booru.url, "rate": 50}})  # fmt: skip
    with serve(settings) as api:
        started = graphql(api, 'mutation { startScrape(queries: ["hug"]) }')
        request_id = started["data"]["startScrape"]
        assert status(api, request_id) == {
            "ID": request_id, "Status": "pending", "Reason": "", "Found": 0, "Published": 0, "QueryErrors": 0, "Job": ""
        }  # fmt: skip

        # A consumer takes it: delivered, not yet acknowledged; then it scrapes and records the outcome.
        server = RequestServer(settings, redis_client, consumer="test-scraper")
        await server.stream.ensure_group()
        [delivery] = await server.stream.read(1)
        assert status(api, request_id)["Status"] == "running"
        await server.handle(delivery)
        done = status(api, request_id)
        assert (done["Status"], done["Found"], done["Published"]) == ("done", 4, 4)
        rest = api.get(f"/api/admin/scrapes/{request_id}", headers=AUTH)
        assert rest.status_code == 200 and rest.json()["status"] == "done" and rest.json()["found"] == 4

        graphql(api, 'mutation { startScrape(queries: ["hug"], source: "nosuchbooru") }')
        [(rejected_id, _)] = await redis_client.xrange(keys.SCRAPE_REQUESTS)  # type: ignore[misc]
        [delivery] = await server.stream.read(1)
        await server.handle(delivery)
        rejected = status(api, rejected_id)
        assert rejected["Status"] == "failed" and "unknown source(s) nosuchbooru" in rejected["Reason"]


async def test_unknown_ids_bad_ids_and_no_token_are_clear_refusals(settings: Settings) -> None:
    with serve(settings.model_copy(update={"admin_token": SecretStr(TOKEN)})) as api:
        unknown = graphql(api, STATUS, id="1700000000000-0")
        assert unknown["errors"][0]["message"] == "no scrape request with ID '1700000000000-0'"
        assert api.get("/api/admin/scrapes/1700000000000-0", headers=AUTH).status_code == 404
        assert api.get("/api/admin/scrapes/not-a-stream-id", headers=AUTH).status_code == 404
        assert api.get("/api/admin/scrapes/1700000000000-0").status_code == 401
        refused = api.post("/query", json={"query": STATUS, "variables": {"id": "1-0"}})
        assert "admin token" in refused.json()["errors"][0]["message"]
        # A requestId of one's own is for Jobs; here the stream entry's ID is the request's.
        own = graphql(api, 'mutation { startScrape(queries: ["hug"], requestId: "mine") }')
        assert "requestId is for startScrape as a Kubernetes Job" in own["errors"][0]["message"]


async def test_a_request_beyond_the_budget_is_refused(settings: Settings, redis_client: Redis) -> None:
    with serve(settings.model_copy(update={"admin_token": SecretStr(TOKEN)})) as api:
        many = graphql(api, "mutation($q: [String!]!) { startScrape(queries: $q) }", q=["hug"] * 201)
        long = graphql(api, "mutation($q: [String!]!) { startScrape(queries: $q) }", q=["x" * 17_000])
    for body in (many, long):
        assert "a scrape request takes at most 200 queries and 16384 characters" in body["errors"][0]["message"]
    assert await redis_client.xlen(keys.SCRAPE_REQUESTS) == 0
