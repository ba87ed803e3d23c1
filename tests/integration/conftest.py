"""Integration fixtures: the real hasher (tests/integration/pipeline.py) and an index it filled once per module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from paktum_cli.embedded_redis import EmbeddedRedis
from paktum_common.settings import Settings
from tests.fakemeili import FakeMeili
from tests.fixtures.booru.server import FixtureBooru
from tests.integration.gallery_data import fill_once
from tests.integration.pipeline import Pipeline, open_pipeline


@pytest.fixture
async def pipeline(settings: Settings, redis_client: Redis) -> AsyncIterator[Pipeline]:
    async with open_pipeline(settings, redis_client) as wired:
        yield wired


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis) -> Settings:
    """One filled index per test module whose tests only read it (the hasher takes seconds to fill one)."""
    base = tmp_path_factory.mktemp("indexed")
    settings = Settings(
        data_dir=base / "data", redis_url=redis_server.url, read_block_ms=100, hasher_workers=1, local_roots=[base]
    )
    fill_once(settings, base / "in")
    return settings


@pytest.fixture
def fake() -> Iterator[FakeMeili]:
    """A Meilisearch stand-in on loopback that speaks its wire format (tests/fakemeili.py)."""
    server = FakeMeili().start()
    yield server
    server.stop()


@pytest.fixture
def booru() -> Iterator[FixtureBooru]:
    """A Gelbooru-format fixture site on loopback, ten posts a page."""
    server = FixtureBooru("gelbooru", max_limit=10).start()
    yield server
    server.stop()
