"""Fixtures every test level shares: a real Redis server, settings pointing at temporary directories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from paktum_cli.embedded_redis import EmbeddedRedis
from paktum_common.redis_client import connect
from paktum_common.settings import Settings
from tests.faults import RestartableRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A real redis-server on a free loopback port, for the whole test session."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """The session's Redis, emptied before each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = connect(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    """Settings as a test machine needs them: temporary data, quick reclaim, short blocking reads."""
    return Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        reclaim_idle_ms=500,
        read_block_ms=100,
        hasher_workers=1,
        max_image_pixels=50_000_000,
        local_roots=[tmp_path],  # tests publish local posts of files they write under tmp_path
    )


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    """A redis-server of the test's own, to kill and start again on its port (tests/faults.py)."""
    server = RestartableRedis(tmp_path / "redis")
    yield server
    server.stop()
