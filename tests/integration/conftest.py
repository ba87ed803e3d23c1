"""Integration fixtures: a hasher wired from its real parts, run in this process until the stream is empty."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from paktum_common.queue import IngestQueue
from paktum_common.redis_server import EmbeddedRedis
from paktum_common.search import SearchBackend, open_search
from paktum_common.settings import Settings, SourceOverride
from paktum_common.store import ImageStore
from paktum_hasher.ingest import Ingestor
from paktum_hasher.main import new_decode_pool
from paktum_hasher.worker import HasherWorker


def with_sources(settings: Settings, sources: dict[str, dict[str, Any]]) -> Settings:
    """`settings` with these PAKTUM_SCRAPE_SOURCES entries, validated (model_copy alone does not validate)."""
    overrides = {name: SourceOverride.model_validate(entry) for name, entry in sources.items()}
    return settings.model_copy(update={"scrape_sources": overrides})


def sources_env(settings: Settings) -> str:
    """PAKTUM_SCRAPE_SOURCES for a child process: the entries as JSON, credentials in clear."""
    entries = {name: entry.model_dump(exclude_none=True) for name, entry in settings.scrape_sources.items()}
    return json.dumps(
        entries, default=lambda value: value.get_secret_value() if isinstance(value, SecretStr) else value
    )


@dataclass
class Pipeline:
    settings: Settings
    queue: IngestQueue
    search: SearchBackend
    store: ImageStore
    worker: HasherWorker

    async def drain(self, timeout: float = 60) -> None:
        """Run the hasher until every published post is handled (indexed or dead-lettered)."""
        task = asyncio.create_task(self.worker.run())
        try:
            async with asyncio.timeout(timeout):
                while (await self.queue.depth()) != (0, 0):
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.05)
        finally:
            self.worker.stop()
            await task
            self.worker._stopping.clear()


@pytest.fixture
async def pipeline(settings: Settings, redis_client: Redis) -> AsyncIterator[Pipeline]:
    search = open_search(settings)
    store = ImageStore.from_settings(settings)
    pool = new_decode_pool(1)
    queue = IngestQueue(redis_client, settings, consumer="test-hasher")
    worker = HasherWorker(queue, search, Ingestor(settings, store, pool, redis_client), 8, lambda: new_decode_pool(1))
    yield Pipeline(settings, queue, search, store, worker)
    worker.ingestor.pool.shutdown()
    await search.close()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis) -> Settings:
    """One filled index per test module whose tests only read it (the hasher takes seconds to fill one)."""
    from tests.integration.gallery_data import fill_once  # it builds on this module's Pipeline

    base = tmp_path_factory.mktemp("indexed")
    settings = Settings(data_dir=base / "data", redis_url=redis_server.url, read_block_ms=100, hasher_workers=1)
    fill_once(settings, base / "in")
    return settings
