"""The hasher's loop: read a batch from the stream, ingest it, index it in one write, then acknowledge."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from paktum_common import metrics
from paktum_common.catalog import Indexed
from paktum_common.contracts import ImageDocument, Post
from paktum_common.errors import PermanentError, SearchUnavailableError, StorageUnavailableError, TransientError
from paktum_common.log import log_event
from paktum_common.queue import Delivery, IngestQueue
from paktum_common.redis_client import RedisAwayError, is_outage
from paktum_hasher.ingest import Ingested, Ingestor

log = logging.getLogger("paktum.hasher")

IMAGES = metrics.counter("hasher", "images_total", "Posts handled, by outcome.", ("outcome",))
FAILURES = metrics.counter("hasher", "failures_total", "Posts that failed, by reason.", ("reason",))
INGEST_SECONDS = metrics.histogram("hasher", "ingest_seconds", "Read, decode, hash, thumbnail and store one image.")
INDEX_RETRIES = metrics.counter("hasher", "index_retries_total", "Index writes retried while the index was down.")
INDEX_RETRY_FIRST, INDEX_RETRY_MAX = 0.5, 30.0
INDEX_SECONDS = metrics.histogram("hasher", "index_batch_seconds", "Write one batch of documents to the index.")
LINKED = metrics.counter("hasher", "linked_images_total", "Indexed images that joined a variant group at once.")
HELD = metrics.counter("hasher", "held_retries_total", "Posts held and retried through an outage, by what was down.",
                       ("cause",))  # fmt: skip


class HasherWorker:
    def __init__(
        self,
        queue: IngestQueue,
        ingestor: Ingestor,
        batch_size: int,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.queue = queue
        self.ingestor = ingestor
        self.batch_size = batch_size
        # Shared with the queue's RedisHealth, so a stop also ends a wait for Redis.
        self._stopping = stopping or asyncio.Event()

    def stop(self) -> None:
        """Finish the batch in hand (index and acknowledge it), then leave the loop."""
        if not self._stopping.is_set():
            log_event(log, logging.INFO, "stopping after the current batch")
        self._stopping.set()

    async def run(self, until_idle: bool = False) -> None:
        """Handle batches until `stop`; with `until_idle`, also leave once every entry on the stream is
        handled (indexed or dead-lettered), by this hasher or another: a backlog job that ends."""
        try:
            await self.queue.ensure_group()
            log_event(log, logging.INFO, "hasher ready", consumer=self.queue.consumer, stream=self.queue.stream)
            while not self._stopping.is_set():
                deliveries = await self.queue.read(self.batch_size)
                if deliveries:
                    await self.handle_batch(deliveries)
                elif until_idle and await self.queue.depth() == (0, 0):
                    log_event(log, logging.INFO, "stream drained, leaving")
                    return
        except RedisAwayError:
            # Stopped while Redis was away: what is in hand stays pending, for this consumer's next start.
            log_event(log, logging.WARNING, "stopped while redis was unavailable; the batch in hand stays pending")

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
                await self._dead_letter(delivery, _post_of(delivery), await self._exhausted_reason(delivery),
                                        "exhausted")  # fmt: skip
                continue
            try:
                work.append((delivery, Post.from_stream(delivery.fields)))
            except PermanentError as exc:
                await self._dead_letter(delivery, None, str(exc), "malformed_post")
        delay = INDEX_RETRY_FIRST
        while work:
            done: list[tuple[Delivery, Ingested]] = []
            held = await self._ingest(work, done)
            if done:  # what got through is indexed and acknowledged now, not after the outage
                await self._index(done)
            if not held:
                break
            (_, post), cause = held[0]
            if self._stopping.is_set():
                for delivery, held_post in [item for item, _ in held]:  # not the post's failure: nothing noted
                    await self._leave_pending(delivery, held_post, f"stopped while held: {cause}", noted=False)
                break
            await self._wait_out(cause, delay, len(held), post)
            delay = min(delay * 2, INDEX_RETRY_MAX)
            work = [item for item, _ in held]

    async def _ingest(
        self, work: list[tuple[Delivery, Post]], done: list[tuple[Delivery, Ingested]]
    ) -> list[tuple[tuple[Delivery, Post], BaseException]]:
        """Ingest posts at once; the finished go to `done`, the refused to the dead letters. Returns the posts
        held by an outage of our own parts (Redis, the image store, the index): not their fault, so they are
        retried in hand, without spending a delivery. A download's trouble is the post's: left pending."""
        results = await asyncio.gather(*(self.ingestor.ingest(post) for _, post in work), return_exceptions=True)
        held: list[tuple[tuple[Delivery, Post], BaseException]] = []
        for (delivery, post), result in zip(work, results, strict=True):
            if isinstance(result, Ingested):
                done.append((delivery, result))
            elif isinstance(result, PermanentError):
                await self._dead_letter(delivery, post, str(result), type(result).__name__)
            elif isinstance(result, StorageUnavailableError | SearchUnavailableError) or is_outage(result):
                held.append(((delivery, post), result))
            elif isinstance(result, Exception):
                await self._leave_pending(delivery, post, f"{type(result).__name__}: {result}")
            else:
                raise result  # CancelledError and the like: let them through
        return held

    async def _wait_out(self, cause: BaseException, delay: float, count: int, post: Post) -> None:
        """Wait for what held the posts to come back: Redis (pinged until it answers), or the store or index
        (retried after a capped backoff)."""
        if is_outage(cause) and self.queue.health is not None:
            HELD.labels("redis").inc(count)
            self.queue.health.went_away(cause)
            await self.queue.health.wait_until_back()
            return
        kind = "store" if isinstance(cause, StorageUnavailableError) else "index"
        HELD.labels(kind).inc(count)
        log_event(log, logging.WARNING, f"{kind} unavailable; holding the batch", reason=str(cause),
                  retry_in_s=delay, held=count, source=post.source, post=post.source_id)  # fmt: skip
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _exhausted_reason(self, delivery: Delivery) -> str:
        """Why an entry ran out of deliveries: the error of its last one, or that the hasher holding it
        never reported one (killed: out of memory, SIGKILL)."""
        errors = await self.queue.errors_of(delivery.entry_id)
        tries = delivery.deliveries - 1
        if errors:
            return f"failed {tries} deliveries; last error: {errors[-1]}"
        return (
            f"failed {tries} deliveries; no error recorded (the hasher handling it died, e.g. killed or out of memory)"
        )

    async def _index(self, done: list[tuple[Delivery, Ingested]]) -> None:
        """One index write for the batch, then acknowledge; a failed write leaves every entry pending."""
        try:
            indexed = await self._write_index([ingested.document for _, ingested in done])
        except Exception as exc:
            for delivery, ingested in done:
                await self._leave_pending(delivery, None, f"index write failed: {exc}", md5=ingested.document.ID)
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
        phashes = {d.ID: d.PHash for d in indexed.written}
        alternates = {d.ID: d.PHashAlternates for d in indexed.written if d.PHashAlternates}
        symmetry = {d.ID: d.symmetry for d in indexed.written}
        signatures = {d.ID: d.signature for d in indexed.written if d.signature}
        register = self.ingestor.catalog.register
        try:
            if self.queue.health is not None:  # ride out a Redis outage here too, rather than leave repairs
                LINKED.inc(await self.queue.health.call(lambda: register(phashes, alternates, symmetry, signatures)))
            else:
                LINKED.inc(await register(phashes, alternates, symmetry, signatures))
        except Exception as exc:
            log_event(log, logging.WARNING, "variant linking failed; the next cleanup run repairs it", reason=str(exc))

    async def _dead_letter(self, delivery: Delivery, post: Post | None, reason: str, kind: str) -> None:
        errors = await self.queue.errors_of(delivery.entry_id)
        if not await self.queue.dead_letter(delivery, reason, errors):
            return  # another hasher finished this entry first
        IMAGES.labels("failed").inc()
        FAILURES.labels(kind).inc()
        log_event(
            log, logging.WARNING, "post rejected", reason=reason, entry=delivery.entry_id,
            source=post.source if post else "", post=post.source_id if post else "",
            url=post.file_url if post else "",
        )  # fmt: skip

    async def _leave_pending(
        self, delivery: Delivery, post: Post | None, reason: str, md5: str = "", noted: bool = True
    ) -> None:
        FAILURES.labels("retry").inc()
        if noted:  # for the dead letter, should the entry run out of deliveries
            await self.queue.note_error(delivery.entry_id, reason)
        log_event(
            log, logging.WARNING, "post left pending for retry", reason=reason, entry=delivery.entry_id,
            deliveries=delivery.deliveries, md5=md5, url=post.file_url if post else "",
            source=post.source if post else "", post=post.source_id if post else "",
        )  # fmt: skip


def _post_of(delivery: Delivery) -> Post | None:
    """The post an entry carries, if it is one: for the log line of its dead letter."""
    try:
        return Post.from_stream(delivery.fields)
    except PermanentError:
        return None
