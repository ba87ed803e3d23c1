"""The real hasher, wired as `paktum-hasher` wires it, run in this process until the stream is drained."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from paktum_common.catalog import Catalog
from paktum_common.queue import IngestQueue
from paktum_common.search import SearchBackend, open_search
from paktum_common.settings import Settings
from paktum_common.store import ImageStore
from paktum_hasher.main import new_worker
from paktum_hasher.worker import HasherWorker
from paktum_scraper.local import ImportReport, local_posts

CONSUMER = "test-hasher"


@dataclass
class Pipeline:
    settings: Settings
    search: SearchBackend
    store: ImageStore
    worker: HasherWorker

    @property
    def queue(self) -> IngestQueue:
        return self.worker.queue

    @property
    def catalog(self) -> Catalog:
        return self.worker.ingestor.catalog

    async def drain(self, timeout: float = 60) -> None:
        """Run the hasher until every published post is handled (indexed or dead-lettered)."""
        async with asyncio.timeout(timeout):
            await self.worker.run(until_idle=True)

    async def index_files(self, folder: Path, files: dict[str, bytes], tags: list[str]) -> dict[str, str]:
        """Write `files` into `folder`, import it as `paktum import` does, drain; name -> md5 (the image's ID)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        await self.queue.publish_posts(local_posts(folder, tags, None, ImportReport()))
        await self.drain()
        return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


@asynccontextmanager
async def open_pipeline(settings: Settings, redis: Redis) -> AsyncIterator[Pipeline]:
    settings = settings.model_copy(update={"consumer_name": CONSUMER, "hasher_batch_size": 8, "hasher_workers": 1})
    search = open_search(settings)
    store = ImageStore.from_settings(settings)
    worker = new_worker(settings, redis, search, store)
    try:
        yield Pipeline(settings, search, store, worker)
    finally:
        worker.ingestor.pool.shutdown()
        await search.close()
