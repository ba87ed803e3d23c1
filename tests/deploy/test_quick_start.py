"""The README's quick start as written: `kubectl create job scrape-now --from=cronjob/paktum-scraper` on a fresh
install runs the real `paktum-scraper` with the environment the chart renders, and it scrapes and exits 0. Also a
startScrape Job's environment, which records the outcome scrapeStatus reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.contracts import Post
from paktum_common.settings import Settings
from tests.deploy.conftest import Manifest, find
from tests.deploy.fake_apiserver import serving
from tests.fixtures.booru.server import FixtureBooru, fixture_posts
from tests.integration.apiserver import serve

Render = Callable[..., list[Manifest]]
BIN = Path(sys.executable).parent
TOKEN = "quick-start-admin-token"


@pytest.fixture
def booru() -> Iterator[FixtureBooru]:
    server = FixtureBooru("gelbooru", max_limit=10).start()
    # What rating:general (the default query) selects, and what it must leave alone.
    server.add(*fixture_posts(1, 6, ["hug", "1girl"], "general"), *fixture_posts(50, 3, ["hug"], "explicit"))
    yield server
    server.stop()


def scraper_container(job_or_cronjob: Manifest) -> Manifest:
    spec = job_or_cronjob["spec"]
    if job_or_cronjob["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    containers = spec["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["scraper"]
    return dict(containers[0])


def run_pod(
    container: Manifest, redis_url: str, booru: FixtureBooru, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """The container's command with its literal environment, as the kubelet would start it. Only what a cluster
    resolves differently is replaced: the Redis Service's address, and the source's address (on a cluster,
    gelbooru.com; an operator could move it the same way, through PAKTUM_SCRAPE_SOURCES)."""
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env["PAKTUM_REDIS_URL"] = redis_url
    env["PAKTUM_SCRAPE_SOURCES"] = json.dumps({"gelbooru": {"url": booru.url, "rate": 50}})
    env.update(PATH=os.environ["PATH"], HOME=str(tmp_path))
    entry, *args = container["args"]
    return subprocess.run(
        [str(BIN / entry), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )  # fmt: skip


async def published(redis: Redis) -> list[Post]:
    entries: Any = await redis.xrange(keys.INGEST_STREAM)
    return [Post.from_stream(fields) for _, fields in entries]


async def test_the_quick_start_scrape_runs_as_written_on_default_values(
    render: Render, booru: FixtureBooru, redis_url: str, redis_client: Redis, tmp_path: Path
) -> None:
    cronjob = find(render(), "CronJob", "paktum-scraper")
    container = scraper_container(cronjob)
    done = run_pod(container, redis_url, booru, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "total: found 6, published 6" in done.stdout
    # The default query, as the site was asked it; only its posts reached the ingest stream, for the hasher.
    requests = [r.params.get("tags", "") for r in booru.api_requests()]
    assert requests and all("rating:general" in tags for tags in requests)
    posts = await published(redis_client)
    assert sorted(int(p.source_id) for p in posts) == [1, 2, 3, 4, 5, 6]


async def test_a_start_scrape_job_records_the_outcome_scrape_status_answers_with(
    render: Render, booru: FixtureBooru, settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    cronjob = find(render(), "CronJob", "paktum-scraper")
    with serving([cronjob], tmp_path) as cluster:
        settings = settings.model_copy(
            update={
                "scrape_job_cronjob": "paktum-scraper", "scrape_job_namespace": "media",
                "kube_config": str(cluster.kubeconfig), "admin_token": SecretStr(TOKEN),
            }
        )  # fmt: skip
        with serve(settings) as api:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            query = 'mutation { startScrape(queries: ["hug 1girl"], source: "gelbooru", requestId: "quick-1") }'
            assert api.post("/query", json={"query": query}, headers=auth).json() == {
                "data": {"startScrape": "quick-1"}
            }
            job = cluster.stored("Job", "media", "paktum-scraper-quick-1")
            assert job is not None
            done = run_pod(scraper_container(job), redis_url, booru, tmp_path)
            assert done.returncode == 0, done.stdout + done.stderr
            job["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
            status = api.get("/api/admin/scrapes/quick-1", headers=auth).json()
    assert (status["status"], status["found"], status["published"], status["job"]) == (
        "done", 6, 6, "paktum-scraper-quick-1"
    )  # fmt: skip


async def test_a_start_scrape_job_for_an_unknown_source_records_why_it_failed(
    render: Render, booru: FixtureBooru, redis_url: str, redis_client: Redis, tmp_path: Path
) -> None:
    container = scraper_container(find(render(), "CronJob", "paktum-scraper"))
    container["env"] = [e for e in container["env"] if e["name"] != "PAKTUM_SCRAPE_SOURCE"] + [
        {"name": "PAKTUM_SCRAPE_SOURCE", "value": "nosuchbooru"},
        {"name": "PAKTUM_SCRAPE_REQUEST_ID", "value": "quick-2"},
    ]
    done = run_pod(container, redis_url, booru, tmp_path)
    assert done.returncode == 1 and "unknown source(s) nosuchbooru" in done.stderr
    results: Any = await redis_client.xrange(keys.SCRAPE_RESULTS)
    [(_, outcome)] = results
    assert outcome["request"] == "quick-2" and outcome["status"] == "rejected"
    assert "nosuchbooru" in outcome["reason"]
