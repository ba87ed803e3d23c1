"""The hasher's loop: read a batch from the stream, ingest it, index it in one write, then acknowledge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool

from paktum_common import metrics
from paktum_common.catalog import Indexed
from paktum_common.contracts import ImageDocument, Post
from paktum_common.errors import PermanentError, TransientError
from paktum_common.log import log_event
from paktum_common.queue import Delivery, IngestQueue
from paktum_hasher.ingest import Ingested, Ingestor

log = logging.getLogger("paktum.hasher")

IMAGES = metrics.counter("hasher", "images_total", "Posts handled, by outcome.", ("outcome",))
FAILURES = metrics.counter("hasher", "failures_total", "Posts that failed, by reason.", ("reason",))
INGEST_SECONDS = metrics.histogram("hasher", "ingest_seconds", "Read, decode, hash, thumbnail and store one image.")
INDEX_RETRIES = metrics.counter("hasher", "index_retries_total", "Index writes retried while the index was down.")
INDEX_RETRY_FIRST, INDEX_RETRY_MAX = 0.5, 30.0
INDEX_SECONDS = metrics.histogram("hasher", "index_batch_seconds", "Write one batch of documents to the index.")
LINKED = metrics.counter("hasher", "linked_images_total", "Indexed images that joined a variant group at once.")


class HasherWorker:
    def __init__(
        self,
        queue: IngestQueue,
        ingestor: Ingestor,
        batch_size: int,
        new_pool: Callable[[], Executor],
    ) -> None:
        self.queue = queue
        self.ingestor = ingestor
        self.batch_size = batch_size
        self.new_pool = new_pool
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the batch in hand (index and acknowledge it), then leave the loop."""
        if not self._stopping.is_set():
            log_event(log, logging.INFO, "stopping after the current batch")
        self._stopping.set()

    async def run(self, until_idle: bool = False) -> None:
        """Handle batches until `stop`; with `until_idle`, also leave once every entry on the stream is
        handled (indexed or dead-lettered), by this hasher or another: a backlog job that ends."""
        await self.queue.ensure_group()
        log_event(log, logging.INFO, "hasher ready", consumer=self.queue.consumer, stream=self.queue.stream)
        while not self._stopping.is_set():
            deliveries = await self.queue.read(self.batch_size)
            if deliveries:
                await self.handle_batch(deliveries)
            elif until_idle and await self.queue.depth() == (0, 0):
                log_event(log, logging.INFO, "stream drained, leaving")
                return

    async def handle_batch(self, deliveries: list[Delivery]) -> None:
        keep_alive = asyncio.create_task(self.queue.keep_claimed([d.entry_id for d in deliveries]))
        try:
            await self._handle_batch(deliveries)
        finally:
            keep_alive.cancel()

    async def _handle_batch(self, deliveries: list[Delivery]) -> None:
        work: list[tuple[Delivery, Post]] = []
        for delivery in deliveries:
            if self.queue.exhausted(delivery):
                await self._dead_letter(delivery, None, f"failed {delivery.deliveries - 1} deliveries", "exhausted")
                continue
            try:
                work.append((delivery, Post.from_stream(delivery.fields)))
            except PermanentError as exc:
                await self._dead_letter(delivery, None, str(exc), "malformed_post")
        results = await asyncio.gather(*(self.ingestor.ingest(post) for _, post in work), return_exceptions=True)
        done: list[tuple[Delivery, Ingested]] = []
        pool_broken = False
        for (delivery, post), result in zip(work, results, strict=True):
            if isinstance(result, Ingested):
                done.append((delivery, result))
            elif isinstance(result, PermanentError):
                await self._dead_letter(delivery, post, str(result), type(result).__name__)
            elif isinstance(result, BrokenProcessPool):
                pool_broken = True
                self._leave_pending(delivery, post, "a decode worker process died")
            elif isinstance(result, Exception):
                self._leave_pending(delivery, post, f"{type(result).__name__}: {result}")
            else:
                raise result  # CancelledError and the like: let them through
        if pool_broken:
            self._replace_pool()
        if done:
            await self._index(done)

    async def _index(self, done: list[tuple[Delivery, Ingested]]) -> None:
        """One index write for the batch, then acknowledge; a failed write leaves every entry pending."""
        try:
            indexed = await self._write_index([ingested.document for _, ingested in done])
        except Exception as exc:
            for delivery, ingested in done:
                self._leave_pending(delivery, None, f"index write failed: {exc}", md5=ingested.document.ID)
            return
        await self._register(indexed)
        await self.queue.ack([delivery.entry_id for delivery, _ in done])
        for delivery, ingested in done:
            doc = ingested.document
            outcome = "duplicate" if doc.ID in indexed.existing else "indexed"
            IMAGES.labels(outcome).inc()
            INGEST_SECONDS.observe(ingested.seconds)
            log_event(
                log, logging.INFO, f"image {outcome}", md5=doc.ID, source=doc.Source,
                post=doc.SourceID, entry=delivery.entry_id, ms=round(ingested.seconds * 1000, 1),
            )  # fmt: skip

    async def _write_index(self, documents: list[ImageDocument]) -> Indexed:
        """The catalog's index write, retried while the index is down.

        While the index is down the posts are not at fault: hold the batch (its claims renewed) and
        retry, rather than let an outage spend the entries' delivery budget. At shutdown, give up.
        """
        delay = INDEX_RETRY_FIRST
        while True:
            try:
                with INDEX_SECONDS.time():
                    return await self.ingestor.catalog.index(documents)
            except TransientError as exc:
                if self._stopping.is_set():
                    raise
                log_event(log, logging.WARNING, "index unavailable; holding the batch", reason=str(exc),
                          retry_in_s=delay, batch=len(documents))  # fmt: skip
                INDEX_RETRIES.inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, INDEX_RETRY_MAX)

    async def _register(self, indexed: Indexed) -> None:
        """Registry and groups: the documents are indexed, so a failure here costs nothing the cleanup
        run does not repair (the full regroup links them, `--repair` registers them). Never raises."""
        try:
            written = indexed.written
            alternates = {d.ID: d.PHashAlternates for d in written if d.PHashAlternates}
            LINKED.inc(await self.ingestor.catalog.register({d.ID: d.PHash for d in written}, alternates))
        except Exception as exc:
            log_event(log, logging.WARNING, "variant linking failed; the next cleanup run repairs it", reason=str(exc))

    async def _dead_letter(self, delivery: Delivery, post: Post | None, reason: str, kind: str) -> None:
        if not await self.queue.dead_letter(delivery, reason):
            return  # another hasher finished this entry first
        IMAGES.labels("failed").inc()
        FAILURES.labels(kind).inc()
        log_event(
            log, logging.WARNING, "post rejected", reason=reason, entry=delivery.entry_id,
            source=post.source if post else "", post=post.source_id if post else "",
            url=post.file_url if post else "",
        )  # fmt: skip

    def _leave_pending(self, delivery: Delivery, post: Post | None, reason: str, md5: str = "") -> None:
        FAILURES.labels("retry").inc()
        log_event(
            log, logging.WARNING, "post left pending for retry", reason=reason, entry=delivery.entry_id,
            deliveries=delivery.deliveries, md5=md5, url=post.file_url if post else "",
        )  # fmt: skip

    def _replace_pool(self) -> None:
        old = self.ingestor.pool
        self.ingestor.pool = self.new_pool()
        old.shutdown(wait=False, cancel_futures=True)
