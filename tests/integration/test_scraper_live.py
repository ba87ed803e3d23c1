"""Live smoke test against the real sites: runs only with PAKTUM_LIVE_SOURCES=1 (and network access).

Gelbooru needs credentials since 2025: give them in PAKTUM_SCRAPE_SOURCES to include it, e.g.
`PAKTUM_SCRAPE_SOURCES='{"gelbooru": {"user": "<user_id>", "api_key": "<key>"}}'`.
"""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from redis.asyncio import Redis

from paktum_common.settings import Settings
from paktum_hasher.fetch import fetch_media
from paktum_scraper.client import SourceClient, user_agent
from paktum_scraper.ratelimit import RateLimiter
from paktum_scraper.sources import make_source, source_configs

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(os.environ.get("PAKTUM_LIVE_SOURCES") != "1", reason="set PAKTUM_LIVE_SOURCES=1 to run"),
]


def _live_sources() -> list[str]:
    sources = ["safebooru", "danbooru", "yandere", "konachan", "e621"]
    if '"gelbooru"' in os.environ.get("PAKTUM_SCRAPE_SOURCES", ""):
        sources.append("gelbooru")
    return sources


@pytest.mark.parametrize("name", _live_sources())
async def test_a_live_source_answers_in_the_format_we_read(name: str, settings: Settings, redis_client: Redis) -> None:
    live = settings.model_copy(update={"scrape_retries": 2})  # PAKTUM_SCRAPE_SOURCES: read by the fixture
    config = source_configs(live)[name]
    source = make_source(config)
    async with httpx.AsyncClient(headers={"User-Agent": user_agent()}, timeout=30) as http:
        client = SourceClient(source, live, RateLimiter(redis_client, name, 1.0), http)
        first = await client.fetch_page(["cat_ears"], None)
        assert first.posts, f"{name}: no usable posts on the first page ({len(first.skipped)} skipped)"
        deeper = await client.fetch_page(["cat_ears"], first.lowest_id)
        assert deeper.ids and max(deeper.ids) < first.lowest_id  # id paging works on the real site
    pictures = [p for p in first.posts if not p.file_url.endswith((".webm", ".mp4"))]
    post = min(pictures, key=lambda p: (p.width or 0) * (p.height or 0))
    media = await fetch_media(post.source, post.file_url, live)
    assert hashlib.md5(media.data).hexdigest() == post.md5
