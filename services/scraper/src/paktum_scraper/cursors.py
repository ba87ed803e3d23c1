"""Scrape cursors: per (source, query) the newest post id already scraped, kept in Redis."""

from __future__ import annotations

from redis.asyncio import Redis

from paktum_common import keys

# Compare and set in one step: two scrapers finishing the same query at once must not move it back.
_ADVANCE = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"""


def query_key(tags: list[str]) -> str:
    """One spelling per query: `solo cat_ears` and `cat_ears  solo` are the same search."""
    return " ".join(sorted(set(tags)))


class Cursors:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._advance = redis.register_script(_ADVANCE)

    async def newest(self, source: str, tags: list[str]) -> int | None:
        value = await self.redis.hget(keys.SCRAPE_CURSORS.format(source=source), query_key(tags))
        return int(value) if value else None

    async def advance(self, source: str, tags: list[str], newest: int) -> bool:
        """Move the cursor forward only (a late, shorter run must not make the next one re-scrape)."""
        moved = await self._advance(keys=[keys.SCRAPE_CURSORS.format(source=source)], args=[query_key(tags), newest])
        return bool(moved)
