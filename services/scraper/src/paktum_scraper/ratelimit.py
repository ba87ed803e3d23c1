"""A per-source request budget kept in Redis, so every scraper process and replica shares one rate."""

from __future__ import annotations

import asyncio
import math

from redis.asyncio import Redis

from paktum_common import keys

# Each caller reserves the next free slot and waits until it comes. The slot lives in Redis and
# Redis' own clock decides "now", so processes on different machines agree on one timeline.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local delay = tonumber(ARGV[2])
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now + delay)
local after = slot + interval
if ARGV[3] == '1' then after = slot end
redis.call('SET', KEYS[1], string.format('%d', after), 'PX', math.floor((after - now) / 1000) + 60000)
return slot - now
"""


class RateLimiter:
    """At most one request per `1/rate` seconds for `source`, across every process using this Redis."""

    def __init__(self, redis: Redis, source: str, rate: float) -> None:
        self.redis = redis
        self.key = keys.SCRAPE_RATE.format(source=source)
        self.interval_us = max(1, math.ceil(1_000_000 / rate))
        self._script = redis.register_script(_RESERVE)

    async def acquire(self) -> float:
        """Wait for this process' turn; returns how long it waited, in seconds."""
        wait_us = int(await self._script(keys=[self.key], args=[self.interval_us, 0, 0]))
        if wait_us > 0:
            await asyncio.sleep(wait_us / 1_000_000)
        return max(wait_us, 0) / 1_000_000

    async def hold_off(self, seconds: float) -> None:
        """The site asked us to wait (429 Retry-After): no process gets a slot for `seconds`."""
        await self._script(keys=[self.key], args=[0, math.ceil(seconds * 1_000_000), 1])

    def slow_down(self, factor: float = 2.0, slowest: float = 60.0) -> None:
        """After a 429 this process asks for slots further apart for the rest of its run."""
        self.interval_us = min(math.ceil(self.interval_us * factor), math.ceil(slowest * 1_000_000))
