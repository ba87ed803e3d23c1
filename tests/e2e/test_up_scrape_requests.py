"""`paktum up` carries out the api's startScrape: an admin asks over GraphQL, the images become searchable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from paktum_cli.embedded_redis import free_port
from tests.e2e.conftest import Process, api_ready, command, paktum_env, wait_until
from tests.fixtures.booru.server import FixtureBooru, fixture_posts

TOKEN = "e2e-admin-token"
START_SCRAPE = "mutation($q: [String!]!) { startScrape(queries: $q) }"


def _hits(base: str, query: str) -> int:
    return int(httpx.get(f"{base}/api/search", params={"query": query, "limit": 1}, timeout=10).json()["total_hits"])


@pytest.fixture
def booru() -> Iterator[FixtureBooru]:
    server = FixtureBooru("gelbooru", max_limit=10).start()
    yield server
    server.stop()


def test_start_scrape_under_paktum_up_fills_the_index(
    tmp_path: Path, processes: list[Process], booru: FixtureBooru
) -> None:
    booru.add(*fixture_posts(1, 15, ["hug", "solo"], "general"), *fixture_posts(100, 2, ["cat"], "general"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = paktum_env(
        PAKTUM_ADMIN_TOKEN=TOKEN,
        PAKTUM_SCRAPE_SOURCES=json.dumps({"gelbooru": {"url": booru.url, "rate": 50}}),
        PAKTUM_DOWNLOAD_ALLOW_PRIVATE="true",  # the fixture booru is on loopback
        PAKTUM_CLEANUP_INTERVAL="0",
    )
    up = Process(
        [command("paktum"), "--data-dir", str(tmp_path / "data"), "up", "--port", str(port)],
        env,
        tmp_path / "up.log",
    )
    processes.append(up)
    wait_until(lambda: api_ready(base), 60, "the api to be ready")
    wait_until(lambda: "serving scrape requests" in up.output(), 30, "the scraper to serve requests")

    asked = httpx.post(
        f"{base}/query",
        json={"query": START_SCRAPE, "variables": {"q": ["hug solo"]}},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).json()
    assert "errors" not in asked, asked
    entry = asked["data"]["startScrape"]

    wait_until(lambda: _hits(base, "hug solo") == 15, 90, "15 scraped images in the index")
    assert _hits(base, "cat") == 0
    assert f"scrape request done entry={entry}" in up.output()

    up.ctrl_c()
    assert up.wait(60) == 0, up.output()[-3000:]
