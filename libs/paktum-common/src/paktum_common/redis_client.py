"""The one way every service opens Redis, and rides out the times Redis is away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from paktum_common import metrics
from paktum_common.log import log_event

log = logging.getLogger("paktum.redis")

T = TypeVar("T")

# Capped backoff while Redis is away: quick for a restart of half a second, at most one try every few seconds.
RETRY_FIRST, RETRY_MAX = 0.1, 2.0
# Errors this soon after Redis came back are the same outage (connections opened before it, failing one by
# one as they are used): not logged or counted again.
SETTLING_SECONDS = 10.0

REDIS_UP = metrics.gauge("redis", "up", "1 while this process reaches Redis, 0 during an outage.", ("service",))
OUTAGES = metrics.counter("redis", "outages_total", "Redis outages this process rode out.", ("service",))
OUTAGE_SECONDS = metrics.counter("redis", "outage_seconds_total", "Time spent waiting for Redis.", ("service",))


def connect(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True, health_check_interval=30, socket_connect_timeout=5)


def as_text(value: str | bytes) -> str:
    """A reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else value


def redacted(url: str) -> str:
    """A Redis URL fit for a log line: its password (userinfo or `password=` query) replaced by `***`."""
    url = re.sub(r"(//[^/@:]*):[^/]*@", r"\1:***@", url, count=1)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)


def is_outage(exc: BaseException) -> bool:
    """Redis is away (refused, reset, timed out, still loading its data): not the fault of the work in hand.

    Only Redis's own errors count: a timeout of a download or a decode is the post's business."""
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return True
    return isinstance(exc, redis_errors.ResponseError) and str(exc).startswith("LOADING")


class RedisHealth:
    """One process's view of Redis: whether it is reachable, since when it is not, and retrying until it is.

    An outage is logged once when it starts and once when it ends, never per retry; the gauge
    `paktum_redis_up{service=...}` and the counters of outages and seconds spent waiting show it to Prometheus.
    """

    def __init__(self, redis: Redis, service: str, stopping: asyncio.Event | None = None) -> None:
        self.redis = redis
        self.service = service
        self.stopping = stopping  # set: stop waiting (the service is shutting down)
        self.down_since: float | None = None
        self.reason = ""
        self.outages = 0
        self._back_at: float | None = None
        self._quiet = False  # this outage is the tail of the last one: not logged
        REDIS_UP.labels(service).set(1)

    @property
    def up(self) -> bool:
        return self.down_since is None

    def went_away(self, exc: BaseException) -> None:
        """Note that Redis is away (logged once per outage)."""
        self.reason = f"{type(exc).__name__}: {exc}"
        if self.down_since is not None:
            return
        self.down_since = time.monotonic()
        REDIS_UP.labels(self.service).set(0)
        self._quiet = self._back_at is not None and self.down_since - self._back_at < SETTLING_SECONDS
        if self._quiet:
            return
        self.outages += 1
        OUTAGES.labels(self.service).inc()
        REDIS_UP.labels(self.service).set(0)
        log_event(log, logging.WARNING, "redis unavailable; waiting for it", service=self.service, reason=self.reason)

    def came_back(self) -> None:
        if self.down_since is None:
            return
        self._back_at = time.monotonic()
        seconds = self._back_at - self.down_since
        self.down_since = None
        OUTAGE_SECONDS.labels(self.service).inc(seconds)
        REDIS_UP.labels(self.service).set(1)
        if not self._quiet:
            log_event(log, logging.INFO, "redis is back", service=self.service, down_s=round(seconds, 1))

    async def wait_until_back(self) -> bool:
        """Ping with capped backoff until Redis answers (True) or the service stops (False)."""
        stopping = self.stopping
        delay = RETRY_FIRST
        while True:
            try:
                await self.redis.ping()
                # Idle connections opened before the outage are dead: drop them now, not one error at a time.
                await self.redis.connection_pool.disconnect(inuse_connections=False)
                self.came_back()
                return True
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.went_away(exc)
            if stopping is None:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
                if stopping.is_set():
                    return False
            delay = min(delay * 2, RETRY_MAX)

    async def call(
        self,
        op: Callable[[], Awaitable[T]],
        on_back: Callable[[], Awaitable[None]] | None = None,
    ) -> T:
        """`op()`, repeated until it succeeds while Redis is away (any length of outage). `on_back` runs
        once Redis answers again, before the retry (recreate a consumer group, re-read pending entries).
        Raises `RedisAwayError` when the service stops during the outage; other errors go through."""
        recovering = False
        while True:
            try:
                if recovering and on_back is not None:
                    await on_back()
                result = await op()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.went_away(exc)
                if not await self.wait_until_back():
                    raise RedisAwayError(self.reason) from exc
                recovering = True
                continue
            self.came_back()
            return result


class RedisAwayError(redis_errors.ConnectionError):
    """Redis was away when the service was asked to stop: the work in hand stays pending."""
