"""An index filled by the real hasher: 6 safe cats and 3 dogs of another size, for the api's tests."""

from __future__ import annotations

from pathlib import Path

from paktum_common.models import Rating
from paktum_scraper.local import ImportReport, local_posts
from tests.imagefiles import good_images
from tests.integration.conftest import Pipeline


async def fill(folder: Path, pipeline: Pipeline) -> Pipeline:
    good_images(folder / "cats", 6)
    good_images(folder / "dogs", 3, size=(300, 200))
    await pipeline.queue.publish_posts(
        local_posts(folder / "cats", ["cat", "animal", "cat_ears"], Rating.safe, ImportReport())
    )
    await pipeline.queue.publish_posts(local_posts(folder / "dogs", ["dog", "animal"], None, ImportReport()))
    await pipeline.drain()
    return pipeline
