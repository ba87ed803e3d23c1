"""Scrape one query of one source to the end (or to the cursor), filter, and publish in batches."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from paktum_common import metrics
from paktum_common.banned import banned_in
from paktum_common.catalog import Admission
from paktum_common.contracts import Post
from paktum_common.errors import PaktumError
from paktum_common.log import log_event
from paktum_common.queue import IngestQueue
from paktum_scraper.client import SourceClient
from paktum_scraper.cursors import Cursors
from paktum_scraper.sources.base import Page, PageError, SourceQueryError

log = logging.getLogger("paktum.scraper")

POSTS = metrics.counter("scraper", "posts_total", "Posts listed by a source, by outcome.", ("source", "outcome"))
ORDER_METATAGS = ("order:", "sort:")
SKIPPED = metrics.counter("scraper", "skipped_total", "Posts not published, by reason.", ("source", "reason"))


@dataclass
class QueryReport:
    source: str
    query: str
    found: int = 0  # posts listed that are newer than the cursor
    published: int = 0
    pending: int = 0  # accepted, waiting in the batch of 50 that is not full yet
    pages: int = 0
    total: int | None = None  # posts the site says match, when it says
    skipped: Counter[str] = field(default_factory=Counter)
    error: str = ""
    complete: bool = False  # reached the cursor or the end of the query


@dataclass
class Scrape:
    """Everything one query needs; `on_page` reports progress after each page."""

    client: SourceClient
    queue: IngestQueue
    catalog: Admission
    cursors: Cursors
    banned_tags: frozenset[str]
    batch_size: int = 50
    on_page: Callable[[QueryReport], None] | None = None
    _seen_md5: set[str] = field(default_factory=set)

    async def run(self, tags: list[str], full: bool = False, max_posts: int = 0) -> QueryReport:
        source = self.client.source.name
        report = QueryReport(source, " ".join(tags))
        cursor = None if full else await self.cursors.newest(source, tags)
        newest: int | None = None
        before: int | None = None
        batch: list[Post] = []
        log_event(
            log, logging.INFO, "scrape started", source=source, query=report.query, cursor=cursor or "", full=full
        )
        try:
            ordered = [tag for tag in tags if tag.lower().startswith(ORDER_METATAGS)]
            if ordered:
                raise SourceQueryError(
                    f"{' '.join(ordered)}: paging by post id needs the newest-first order; drop it from the query"
                )
            while True:
                page = await self.client.fetch_page(tags, before)
                report.pages += 1
                if before is not None and page.ids and page.highest_id >= before:
                    # A site that ignores the id bound would hand us the same page forever.
                    raise PageError(
                        f"{source} ignored the id bound: asked for posts below {before}, got id {page.highest_id}"
                    )
                if page.total is not None and report.total is None and cursor is None:
                    # The site counts every match; against a cursor only the newer ones are wanted.
                    report.total = page.total
                if not page.ids:
                    report.complete = True
                    break
                newest = max(newest or 0, page.highest_id)
                fresh = await self._filter(page, cursor, report)
                for post in fresh:
                    if max_posts and report.published + len(batch) >= max_posts:
                        self._skip(report, "max_posts", post.source_id, f"over --max-posts {max_posts}", post.md5)
                        continue
                    batch.append(post)
                    if len(batch) >= self.batch_size:
                        report.published += await self.queue.publish_posts(batch)
                        batch = []
                report.pending = len(batch)
                if self.on_page:
                    self.on_page(report)
                if cursor is not None and page.lowest_id <= cursor:
                    report.complete = True
                    break
                if max_posts and report.published + len(batch) >= max_posts:
                    break
                before = page.lowest_id
        except PaktumError as exc:  # a source's failure or ours: this query fails, the others go on
            report.error = str(exc)
            log_event(log, logging.ERROR, "scrape failed", source=source, query=report.query, reason=str(exc))
        finally:
            if batch:
                report.published += await self.queue.publish_posts(batch)
            report.pending = 0
        POSTS.labels(source, "published").inc(report.published)
        if report.complete and newest is not None and not report.error:
            # Only a run that saw everything newer than the old cursor may move it; a bounded or
            # failed run leaves it, and the next run skips what it published as already indexed.
            await self.cursors.advance(source, tags, newest)
        log_event(
            log, logging.INFO, "scrape finished", source=source, query=report.query, found=report.found,
            published=report.published, skipped=sum(report.skipped.values()), pages=report.pages,
            complete=report.complete, error=report.error,
        )  # fmt: skip
        return report

    async def _filter(self, page: Page, cursor: int | None, report: QueryReport) -> list[Post]:
        source = self.client.source.name
        newer = [p for p in page.posts if cursor is None or int(p.source_id) > cursor]
        unusable = [s for s in page.skipped if cursor is None or int(s.source_id) > cursor]
        for skipped in unusable:
            self._skip(report, skipped.reason, skipped.source_id, skipped.detail)
        report.found += len(newer) + len(unusable)
        POSTS.labels(source, "seen").inc(len(newer) + len(unusable))
        candidates: list[Post] = []
        for post in newer:
            hits = banned_in(post.tags, self.banned_tags)
            if hits:
                self._skip(report, "banned_tag", post.source_id, f"banned tags: {' '.join(hits)}", post.md5)
            elif post.md5 in self._seen_md5:
                self._skip(report, "duplicate", post.source_id, "the same file was listed earlier", post.md5)
            else:
                self._seen_md5.add(post.md5)
                candidates.append(post)
        if not candidates:
            return []
        # One round trip for the page: banned files and files we have are not published again.
        standing = await self.catalog.standing([post.md5 for post in candidates])
        fresh = []
        for post in candidates:
            known = standing[post.md5]
            if known.banned:
                self._skip(report, "banned_md5", post.source_id, "the file was removed for good", post.md5)
            elif known.indexed:
                self._skip(report, "already_indexed", post.source_id, "the file is already in the index", post.md5)
            else:
                fresh.append(post)
        return fresh

    def _skip(self, report: QueryReport, reason: str, post_id: str, detail: str, md5: str = "") -> None:
        report.skipped[reason] += 1
        SKIPPED.labels(self.client.source.name, reason).inc()
        log_event(
            log, logging.INFO, "post skipped", source=self.client.source.name, post=post_id, md5=md5,
            reason=reason, detail=detail,
        )  # fmt: skip
