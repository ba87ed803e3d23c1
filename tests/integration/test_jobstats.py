"""Last-run figures of the short-lived jobs: written to a real Redis, read back, exported on the api's /metrics."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from redis.asyncio import Redis

from paktum_common.jobstats import JobFigure, JobStatsCollector, read_job_runs, record_job_run
from paktum_common.settings import Settings
from tests.integration.apiserver import serve


async def exposition(redis: Redis) -> str:
    registry = CollectorRegistry()
    collector = JobStatsCollector(registry)
    await collector.refresh(redis)
    return generate_latest(registry).decode()


async def test_a_run_is_exported_with_its_figures_and_labels(redis_client: Redis) -> None:
    figures = [
        JobFigure("posts_published", 120, {"source": "gelbooru"}),
        JobFigure("posts_published", 7, {"source": "danbooru"}),
        JobFigure("variant_groups", 3),
    ]
    await record_job_run(redis_client, "scraper", figures, succeeded=True, started_at=1000.0, finished_at=1042.5)
    text = await exposition(redis_client)
    assert 'paktum_scraper_last_run_posts_published{source="gelbooru"} 120.0' in text
    assert 'paktum_scraper_last_run_posts_published{source="danbooru"} 7.0' in text
    assert "paktum_scraper_last_run_variant_groups 3.0" in text
    assert "paktum_scraper_last_run_duration_seconds 42.5" in text
    assert "paktum_scraper_last_run_success 1.0" in text
    assert "paktum_scraper_last_success_timestamp_seconds 1042.5" in text


async def test_a_failed_run_replaces_figures_but_keeps_the_last_success(redis_client: Redis) -> None:
    await record_job_run(
        redis_client, "cleanup", [JobFigure("purged_images", 5)], succeeded=True, started_at=10, finished_at=20
    )
    await record_job_run(
        redis_client, "cleanup", [JobFigure("variant_groups", 9)], succeeded=False, started_at=30, finished_at=35
    )
    [run] = await read_job_runs(redis_client)
    assert (run.succeeded, run.finished_at, run.last_success_at) == (False, 35.0, 20.0)
    assert [f.name for f in run.figures] == ["variant_groups"]
    text = await exposition(redis_client)
    assert "paktum_cleanup_last_run_purged_images" not in text
    assert "paktum_cleanup_last_run_success 0.0" in text


@pytest.mark.parametrize(
    ("job", "figure"),
    [
        ("Scraper", JobFigure("ok", 1)),
        ("scraper", JobFigure("posts-published", 1)),
        ("scraper", JobFigure("ok", 1, {"a b": "x"})),
    ],
    ids=["capital-job", "dash-in-figure", "space-in-label"],
)
async def test_names_prometheus_cannot_carry_are_refused(redis_client: Redis, job: str, figure: JobFigure) -> None:
    with pytest.raises(ValueError, match="must match"):
        await record_job_run(redis_client, job, [figure], succeeded=True, started_at=0)
    assert await read_job_runs(redis_client) == []


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    with serve(settings) as client:
        yield client


async def test_the_api_exports_the_last_runs_on_metrics(redis_client: Redis, api: httpx.Client) -> None:
    await record_job_run(
        redis_client, "cleanup", [JobFigure("variant_groups", 11)], succeeded=True, started_at=1, finished_at=2
    )
    text = api.get("/metrics").text
    assert "paktum_cleanup_last_run_variant_groups 11.0" in text
    assert "paktum_cleanup_last_success_timestamp_seconds 2.0" in text
