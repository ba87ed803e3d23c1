"""Run a list of queries against one or more sources: wiring, progress, and the summary both entry points print."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Iterable
from typing import TextIO

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar

from paktum_common.banned import banned_tags_now
from paktum_common.catalog import Admission
from paktum_common.log import log_event
from paktum_common.queue import IngestQueue
from paktum_common.redis_client import connect
from paktum_common.settings import Settings
from paktum_scraper.client import SourceClient, user_agent
from paktum_scraper.cursors import Cursors
from paktum_scraper.ratelimit import RateLimiter
from paktum_scraper.scrape import QueryReport, Scrape
from paktum_scraper.sources import SourceConfigError, make_source, source_configs

log = logging.getLogger("paktum.scraper")


def parse_queries(text: str) -> list[list[str]]:
    """One query per line, tags separated by spaces; blank lines and `#` comments are ignored."""
    queries = []
    for line in text.splitlines():
        tags = line.partition("#")[0].split()
        if tags:
            queries.append(tags)
    return queries


class Progress:
    """A live bar per query on a terminal; a log line per page otherwise (CronJob and service logs)."""

    def __init__(self, stream: TextIO, live: bool) -> None:
        self.live = live
        self._console = Console(file=stream, force_terminal=live)
        self._bar: Bar | None = None
        self._task = TaskID(0)

    def page(self, report: QueryReport) -> None:
        if not self.live:
            log_event(
                log, logging.INFO, "page read", source=report.source, query=report.query, page=report.pages,
                found=report.found, new=report.published + report.pending, skipped=sum(report.skipped.values()),
            )  # fmt: skip
            return
        first = self._bar is None
        if self._bar is None:
            self._bar = Bar(
                TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                TextColumn("page {task.fields[page]}, found {task.fields[found]}, new {task.fields[new]}, "
                           "skipped {task.fields[skipped]}"),
                TimeElapsedColumn(), console=self._console,
            )  # fmt: skip
            self._task = self._bar.add_task(f"{report.source} {report.query!r}", total=None)
        # Gelbooru says how many posts match; for the others the bar has no end (rich animates it).
        self._bar.update(
            self._task, total=report.total or None, completed=report.found, page=report.pages, found=report.found,
            new=report.published + report.pending, skipped=sum(report.skipped.values()),
        )  # fmt: skip
        if first:  # drawn from the first page's figures on, never with empty ones
            self._bar.start()

    def finish(self) -> None:
        """The query is done: its line stays as it last was, the next query gets a line of its own."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


async def scrape(
    settings: Settings,
    source_names: list[str],
    queries: list[list[str]],
    *,
    full: bool = False,
    max_posts: int = 0,
    progress: Progress | None = None,
) -> list[QueryReport]:
    """Scrape every query on every named source, in order; a failing query does not stop the others."""
    assert settings.redis_url, "PAKTUM_REDIS_URL must be set before scraping"
    configs = source_configs(settings)
    unknown = [name for name in source_names if name not in configs]
    if unknown:
        raise SourceConfigError(
            f"unknown source(s) {', '.join(unknown)}: known are {', '.join(sorted(configs))} "
            "(add others in PAKTUM_SCRAPE_SOURCES)"
        )
    redis = connect(settings.redis_url)
    banned = await banned_tags_now(redis, settings)  # the configured list and an admin's run-time bans
    # Banned and already indexed files are told by Redis alone: a scraper needs no index or data volume.
    admission = Admission(redis, settings.variant_distance)
    timeout = httpx.Timeout(settings.scrape_timeout_seconds)
    reports: list[QueryReport] = []
    try:
        async with httpx.AsyncClient(headers={"User-Agent": user_agent()}, timeout=timeout) as http:
            queue = IngestQueue(redis, settings)
            for name in source_names:
                config = configs[name]
                source = make_source(config)
                client = SourceClient(source, settings, RateLimiter(redis, name, config.rate), http)
                for tags in queries:
                    job = Scrape(
                        client, queue, admission, Cursors(redis), banned, settings.publish_batch_size,
                        progress.page if progress else None,
                    )  # fmt: skip
                    try:
                        report = await job.run(tags, full=full, max_posts=max_posts)
                    finally:
                        if progress:
                            progress.finish()
                    reports.append(report)
    finally:
        await redis.aclose()
    return reports


def summary(reports: Iterable[QueryReport]) -> list[str]:
    """One line per query and a total: found, published, skipped by reason, errors."""
    lines = []
    found = published = errors = 0
    skipped: Counter[str] = Counter()
    for report in reports:
        found += report.found
        published += report.published
        skipped.update(report.skipped)
        errors += bool(report.error)
        line = (
            f"{report.source} {report.query!r}: found {report.found}, published {report.published}, "
            f"skipped {_reasons(report.skipped)}"
        )
        if report.error:
            line += f"; ERROR: {report.error}"
        lines.append(line)
    lines.append(f"total: found {found}, published {published}, skipped {_reasons(skipped)}, errors {errors}")
    return lines


def _reasons(counts: Counter[str]) -> str:
    if not counts:
        return "0"
    detail = ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))
    return f"{sum(counts.values())} ({detail})"


def exit_code(reports: list[QueryReport]) -> int:
    return 1 if any(report.error for report in reports) else 0


def default_progress() -> Progress:
    return Progress(sys.stderr, sys.stderr.isatty())
