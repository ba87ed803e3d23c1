"""Publish posts from any source to the ingest stream, in the queue's batches."""

from __future__ import annotations

from collections.abc import Iterable

from paktum_common.contracts import Post
from paktum_common.queue import IngestQueue
from paktum_common.redis_client import connect
from paktum_common.settings import Settings


async def publish(settings: Settings, posts: Iterable[Post]) -> int:
    assert settings.redis_url, "PAKTUM_REDIS_URL must be set before publishing"
    redis = connect(settings.redis_url)
    try:
        return await IngestQueue(redis, settings).publish_posts(posts)
    finally:
        await redis.aclose()
