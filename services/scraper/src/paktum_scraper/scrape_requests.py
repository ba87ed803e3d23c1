"""Serve the api's scrape requests (startScrape): read them with a consumer group, scrape, record the outcome, ack."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.contracts import ScrapeOutcome, ScrapeRequest, ScrapeStatus
from paktum_common.errors import PaktumError
from paktum_common.jobstats import JobFigure, record_job_run
from paktum_common.log import log_event
from paktum_common.queue import Delivery, StreamConsumer, consumer_limits
from paktum_common.redis_client import RedisAwayError, RedisHealth, is_outage
from paktum_common.settings import Settings
from paktum_scraper.run import Progress, parse_queries, scrape
from paktum_scraper.scrape import QueryReport
from paktum_scraper.sources import SourceConfigError

log = logging.getLogger("paktum.scraper")

RESULTS_KEEP = 10_000  # outcomes are for an admin looking back, not an archive: trim the oldest
JOB = "scrape_requests"  # in the job stats: paktum_scrape_requests_last_run_* on the api's /metrics


class ScrapeRequestError(PaktumError):
    """A scrape request that can never succeed as written (no queries, an unknown source)."""


@dataclass(frozen=True)
class ScrapeWork:
    """A scrape request read off the stream, checked: parsed queries and the sources to ask."""

    entry_id: str
    queries: list[list[str]]
    sources: list[str]

    @classmethod
    def from_delivery(cls, delivery: Delivery, default_sources: list[str]) -> ScrapeWork:
        request = ScrapeRequest.from_stream(delivery.fields)
        queries = parse_queries(request.queries)
        if not queries:
            raise ScrapeRequestError("the request has no tag queries")
        sources = request.sources(default_sources)
        if not sources:
            raise ScrapeRequestError("the request names no source and PAKTUM_SCRAPE_SOURCE is empty")
        return cls(delivery.entry_id, queries, sources)


@dataclass(frozen=True)
class Outcome:
    status: ScrapeStatus
    reason: str = ""
    reports: tuple[QueryReport, ...] = ()

    @classmethod
    def of(cls, reports: list[QueryReport]) -> Outcome:
        errors = [f"{r.source} {r.query!r}: {r.error}" for r in reports if r.error]
        return cls("failed" if errors else "done", "; ".join(errors), tuple(reports))

    def record(self, request_id: str, asked: ScrapeRequest, deliveries: int) -> ScrapeOutcome:
        return ScrapeOutcome(
            request=request_id, status=self.status, reason=self.reason, queries=asked.queries, source=asked.source,
            requested=asked.requested, found=sum(r.found for r in self.reports),
            published=sum(r.published for r in self.reports), query_errors=sum(bool(r.error) for r in self.reports),
            deliveries=deliveries,
        )  # fmt: skip


class RequestServer:
    """The loop of `paktum-scraper --serve-requests`: one request at a time, each acknowledged once it is done.

    Every request is acknowledged with its outcome, whether its queries succeeded or not: a failed query is
    an answer (the next request may retry it), not a reason to redeliver. A Redis outage is waited out
    (the server never exits for one): a scrape it cut short starts again once Redis is back, resuming from
    the cursors, without spending a delivery. Only a scrape interrupted by SIGTERM, or by another error
    outside the scrape, stays pending: this consumer takes it up again when it restarts, another one after
    PAKTUM_RECLAIM_IDLE_MS; after PAKTUM_MAX_DELIVERIES it is recorded as failed.
    """

    def __init__(self, settings: Settings, redis: Redis, consumer: str | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self._stopping = asyncio.Event()
        self.health = RedisHealth(redis, "scraper", self._stopping)
        self.stream = StreamConsumer(
            redis, keys.SCRAPE_REQUESTS, keys.SCRAPE_REQUESTS_GROUP, consumer or settings.effective_consumer_name,
            health=self.health, **consumer_limits(settings),
        )  # fmt: skip

    def stop(self) -> None:
        """Leave the loop; a scrape in progress is abandoned and its request left pending for the next start."""
        if not self._stopping.is_set():
            log_event(log, logging.INFO, "stopping scrape request server")
        self._stopping.set()

    async def run(self) -> None:
        try:
            await self.stream.ensure_group()
            log_event(
                log, logging.INFO, "serving scrape requests", consumer=self.stream.consumer,
                stream=keys.SCRAPE_REQUESTS,
            )  # fmt: skip
            while not self._stopping.is_set():
                for delivery in await self.stream.read(1):
                    if self._stopping.is_set():
                        break
                    await self.handle(delivery)
        except RedisAwayError:
            log_event(log, logging.WARNING, "stopped while redis was unavailable; a request in hand stays pending")

    async def handle(self, delivery: Delivery) -> None:
        started = time.time()
        if self.stream.exhausted(delivery):
            reason = f"gave up after {delivery.deliveries - 1} deliveries that did not finish"
            await self._finish(delivery, Outcome("failed", reason), started)
            return
        try:
            request = ScrapeWork.from_delivery(delivery, self.settings.scrape_source)
        except ScrapeRequestError as exc:
            await self._finish(delivery, Outcome("rejected", str(exc)), started)
            return
        log_event(
            log, logging.INFO, "scrape request started", entry=delivery.entry_id, sources=",".join(request.sources),
            queries=len(request.queries), delivery=delivery.deliveries,
        )  # fmt: skip
        keep_alive = asyncio.create_task(self.stream.keep_claimed([delivery.entry_id]))
        progress = Progress(sys.stderr, live=False)  # a log line per page: this runs as a service
        try:
            while True:
                job = scrape(
                    self.settings, request.sources, request.queries, max_posts=self.settings.scrape_max_posts,
                    progress=progress,
                )  # fmt: skip
                try:
                    reports = await self._unless_stopped(job)
                    break
                except SourceConfigError as exc:  # an unknown source: asking again will not make it known
                    await self._finish(delivery, Outcome("rejected", str(exc)), started)
                    return
                except Exception as exc:
                    if is_outage(exc):
                        # Redis went away mid-scrape: wait for it, then scrape again from the cursors.
                        self.health.went_away(exc)
                        if await self.health.wait_until_back():
                            log_event(log, logging.INFO, "scrape request resumes", entry=delivery.entry_id)
                            continue
                    # Not the request's fault: redeliver it, up to PAKTUM_MAX_DELIVERIES.
                    log_event(
                        log, logging.ERROR, "scrape request interrupted, left pending", entry=delivery.entry_id,
                        reason=f"{type(exc).__name__}: {exc}",
                    )  # fmt: skip
                    return
        finally:
            keep_alive.cancel()
        if reports is None:
            log_event(log, logging.WARNING, "scrape request left pending for the next start", entry=delivery.entry_id)
            return
        await self._finish(delivery, Outcome.of(reports), started)

    async def _after_record(self, figures: list[JobFigure], succeeded: bool, started: float) -> None:
        await self.redis.xtrim(keys.SCRAPE_RESULTS, maxlen=RESULTS_KEEP, approximate=True)
        await record_job_run(self.redis, JOB, figures, succeeded=succeeded, started_at=started)

    async def _unless_stopped(self, job: Coroutine[Any, Any, list[QueryReport]]) -> list[QueryReport] | None:
        """The scrape's reports, or None when a stop came first: the scrape is then cancelled, not waited for
        (a query can run for hours, longer than any grace period before SIGKILL)."""
        task = asyncio.create_task(job)
        stop = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        # redis-py finishes a command it was cancelled in and drops the cancellation: repeat it until it takes.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.2)
        if task.cancelled():
            return None
        return task.result()

    async def _finish(self, delivery: Delivery, outcome: Outcome, started: float) -> None:
        """Record the outcome, acknowledge, and log it: one line an operator can find by the request's entry ID."""
        record = outcome.record(delivery.entry_id, ScrapeRequest.from_stream(delivery.fields), delivery.deliveries)
        recorded = await self.stream.ack_recording(delivery.entry_id, keys.SCRAPE_RESULTS, record.to_stream())
        if recorded:
            figures = record_figures(record)
            await self.health.call(lambda: self._after_record(figures, record.status == "done", started))
        log_outcome(record, recorded=recorded)


def record_figures(record: ScrapeOutcome) -> list[JobFigure]:
    return [
        JobFigure("posts_found", record.found), JobFigure("posts_published", record.published),
        JobFigure("query_errors", record.query_errors),
    ]  # fmt: skip


def log_outcome(record: ScrapeOutcome, **fields: Any) -> None:
    """One line an operator can find by the request's ID."""
    level = logging.INFO if record.status == "done" else logging.ERROR
    log_event(
        log, level, f"scrape request {record.status}", entry=record.request, reason=record.reason, found=record.found,
        published=record.published, query_errors=record.query_errors, **fields,
    )  # fmt: skip


async def record_job_outcome(
    redis: Redis, request_id: str, asked: ScrapeRequest, outcome: Outcome, started: float
) -> None:
    """A scrape Job's answer to the request it was made for (PAKTUM_SCRAPE_REQUEST_ID), where scrapeStatus reads it."""
    record = outcome.record(request_id, asked, deliveries=1)
    await redis.xadd(keys.SCRAPE_RESULTS, record.to_stream(), maxlen=RESULTS_KEEP, approximate=True)  # type: ignore[arg-type]
    await record_job_run(redis, JOB, record_figures(record), succeeded=record.status == "done", started_at=started)
    log_outcome(record, job=True)
