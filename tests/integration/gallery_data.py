"""An index filled by the real hasher: 6 safe cats and 3 dogs of another size, for the api's tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from paktum_common.contracts import Rating
from paktum_common.redis_client import connect
from paktum_common.settings import Settings
from paktum_scraper.local import ImportReport, local_posts
from tests.imagefiles import good_images
from tests.integration.pipeline import Pipeline, open_pipeline


async def fill(folder: Path, pipeline: Pipeline) -> Pipeline:
    good_images(folder / "cats", 6)
    good_images(folder / "dogs", 3, size=(300, 200))
    await pipeline.queue.publish_posts(
        local_posts(folder / "cats", ["cat", "animal", "cat_ears"], Rating.safe, ImportReport())
    )
    await pipeline.queue.publish_posts(local_posts(folder / "dogs", ["dog", "animal"], None, ImportReport()))
    await pipeline.drain()
    return pipeline


def fill_once(settings: Settings, folder: Path) -> None:
    """Fill the index and the store under `settings` with the real hasher, outside any test's event loop.

    For modules whose tests only read: the index and files outlive the Redis that each test empties.
    """

    async def run() -> None:
        assert settings.redis_url
        redis = connect(settings.redis_url)
        try:
            # From an empty Redis, as every test starts: what an earlier module left there (an owner's tag
            # edits, bans) would otherwise shape this index.
            await redis.flushall()
            async with open_pipeline(settings, redis) as pipeline:
                await fill(folder, pipeline)
        finally:
            await redis.aclose()

    asyncio.run(run())
