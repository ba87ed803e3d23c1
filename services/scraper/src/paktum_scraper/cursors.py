"""Scrape cursors: per (source, query) the newest post id already scraped, kept in Redis."""

from __future__ import annotations

from redis.asyncio import Redis

CURSOR_KEY = "paktum:scrape:cursor:{source}"


def query_key(tags: list[str]) -> str:
    """One spelling per query: `solo cat_ears` and `cat_ears  solo` are the same search."""
    return " ".join(sorted(set(tags)))


class Cursors:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def newest(self, source: str, tags: list[str]) -> int | None:
        value = await self.redis.hget(CURSOR_KEY.format(source=source), query_key(tags))
        return int(value) if value else None

    async def advance(self, source: str, tags: list[str], newest: int) -> None:
        """Move the cursor forward only: a late, shorter run must not make the next one re-scrape."""
        key, field = CURSOR_KEY.format(source=source), query_key(tags)
        current = await self.newest(source, tags)
        if current is None or newest > current:
            await self.redis.hset(key, field, str(newest))

    async def forget(self, source: str, tags: list[str]) -> None:
        await self.redis.hdel(CURSOR_KEY.format(source=source), query_key(tags))
