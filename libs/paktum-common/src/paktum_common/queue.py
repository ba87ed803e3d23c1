"""Redis streams read by a consumer group (reclaim, keep claims alive), and the ingest stream built on it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from paktum_common import keys
from paktum_common.contracts import DeadLetter, Post
from paktum_common.errors import TransientError
from paktum_common.log import log_event
from paktum_common.redis_client import RedisHealth, as_text, is_outage
from paktum_common.settings import Settings

log = logging.getLogger("paktum.queue")

T = TypeVar("T")
# The errors kept per entry: enough for every delivery PAKTUM_MAX_DELIVERIES allows, each cut to a line.
ERRORS_KEPT, ERROR_CHARS = 20, 500


@dataclass(frozen=True)
class Delivery:
    """One stream entry handed to this consumer, with how many times it has been delivered."""

    entry_id: str
    fields: dict[str, str]
    deliveries: int


class StreamConsumer:
    """A consumer in a Redis stream's consumer group: read (own pending first, then reclaimed, then new),
    keep a claim alive while working, acknowledge.

    An entry a dead consumer left pending is reclaimed once it has been idle for `reclaim_idle_ms`;
    `exhausted` tells when an entry has been delivered more than `max_deliveries` times.

    With `health`, every call rides out a Redis outage of any length (capped backoff, logged once) and
    then carries on where it was: the group is recreated if Redis came back without its data, and this
    consumer's own pending entries are read again first (XREADGROUP from id 0: entries Redis handed out
    in a reply the outage cut off are in our pending list, not in hand). Without it, calls raise.
    """

    def __init__(
        self,
        redis: Redis,
        stream: str,
        group: str,
        consumer: str,
        *,
        max_deliveries: int,
        reclaim_idle_ms: int,
        block_ms: int,
        health: RedisHealth | None = None,
    ) -> None:
        self.redis = redis
        self.health = health
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.max_deliveries = max_deliveries
        self.reclaim_idle_ms = reclaim_idle_ms
        self.block_ms = block_ms
        self._own_pending_drained = False
        self._reclaim_cursor = "0-0"
        self.errors_key = keys.ENTRY_ERRORS.format(stream=stream)

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        if self.health is None:
            return await op()
        return await self.health.call(op, on_back=self._after_outage)

    async def _after_outage(self) -> None:
        """Redis is back: the group may be gone (restarted without persistence), and our own pending list
        may hold entries whose delivery never reached us. Start over from it."""
        await self._create_group()
        self._own_pending_drained = False
        self._reclaim_cursor = "0-0"

    async def ensure_group(self) -> None:
        await self._call(self._create_group)

    async def _create_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, count: int) -> list[Delivery]:
        """Next entries for this consumer: first its own pending ones (after a restart), then
        entries idle too long in a dead consumer's hands, then new ones (blocking briefly)."""
        return await self._call(lambda: self._read(count))

    async def _read(self, count: int) -> list[Delivery]:
        try:
            return await self._read_next(count)
        except ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
            # The stream or group went away under us (deleted, or Redis restarted without its data).
            await self._after_outage()
            return await self._read_next(count)

    async def _read_next(self, count: int) -> list[Delivery]:
        if not self._own_pending_drained:
            own = await self._read_group("0", count, block=None)
            if own:
                return await self._with_counts(own)
            self._own_pending_drained = True
        if self.reclaim_idle_ms >= 0:
            claimed = await self._autoclaim(count)
            if claimed:
                return await self._with_counts(claimed)
        fresh = await self._read_group(">", count, block=self.block_ms)
        return [Delivery(entry_id, fields, 1) for entry_id, fields in fresh]

    async def _read_group(self, start: str, count: int, block: int | None) -> list[tuple[str, dict[str, str]]]:
        reply: Any = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count, block=block
        )
        entries: list[tuple[str, dict[str, str]]] = []
        for _stream, items in reply or []:
            for entry_id, fields in items:
                # An entry deleted from the stream while pending comes back with no fields.
                entries.append((as_text(entry_id), {as_text(k): as_text(v) for k, v in (fields or {}).items()}))
        return entries

    async def _autoclaim(self, count: int) -> list[tuple[str, dict[str, str]]]:
        reply: Any = await self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.reclaim_idle_ms,
            start_id=self._reclaim_cursor,
            count=count,
        )
        next_cursor, items = as_text(reply[0]), reply[1]
        self._reclaim_cursor = next_cursor
        return [(as_text(eid), {as_text(k): as_text(v) for k, v in (fields or {}).items()}) for eid, fields in items]

    async def _with_counts(self, entries: list[tuple[str, dict[str, str]]]) -> list[Delivery]:
        """Attach the delivery count Redis keeps for each redelivered entry."""
        counts: dict[str, int] = {}
        ids = [entry_id for entry_id, _ in entries]
        pending: Any = await self.redis.xpending_range(
            self.stream,
            self.group,
            min=min(ids, key=_id_key),
            max=max(ids, key=_id_key),
            count=len(ids) + 1000,
            consumername=self.consumer,
        )
        for item in pending:
            counts[as_text(item["message_id"])] = int(item["times_delivered"])
        return [Delivery(eid, fields, counts.get(eid, 1)) for eid, fields in entries]

    def exhausted(self, delivery: Delivery) -> bool:
        return delivery.deliveries > self.max_deliveries

    async def ack(self, entry_ids: list[str]) -> None:
        """Acknowledge and delete: the stream then holds only work not yet done, so its length is the backlog."""
        if entry_ids:
            await self._call(lambda: self._ack(entry_ids))

    async def _ack(self, entry_ids: list[str]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, *entry_ids)
            pipe.xdel(self.stream, *entry_ids)
            pipe.hdel(self.errors_key, *entry_ids)
            try:
                await pipe.execute()
            except ResponseError as exc:
                # NOGROUP: Redis lost the group (restarted without its data) and the entries with it.
                if not str(exc).startswith("NOGROUP"):
                    raise

    async def note_error(self, entry_id: str, error: str) -> None:
        """Remember why this delivery of an entry failed, for its dead letter if it runs out of deliveries.
        Best effort: a note lost to an outage only makes a dead letter less precise."""
        try:
            raw = await self.redis.hget(self.errors_key, entry_id)
            errors = [*(json.loads(raw) if raw else []), error[:ERROR_CHARS]][-ERRORS_KEPT:]
            await self.redis.hset(self.errors_key, entry_id, json.dumps(errors))
        except Exception as exc:
            if not is_outage(exc):
                raise

    async def errors_of(self, entry_id: str) -> list[str]:
        raw = await self._call(lambda: self.redis.hget(self.errors_key, entry_id))
        return list(json.loads(raw)) if raw else []

    async def ack_recording(self, entry_id: str, record_stream: str, record: dict[str, str]) -> bool:
        """Acknowledge and delete an entry and append `record` to `record_stream`, atomically.

        Only the consumer whose ack takes the entry off the pending list writes the record, so an entry
        handled twice (reclaimed while a slow consumer still held it) is recorded once.
        """
        flat = [item for pair in record.items() for item in pair]
        keys_ = (self.stream, record_stream, self.errors_key)
        moved = await self._call(lambda: self._eval_recording(keys_, entry_id, flat))
        return bool(moved)

    async def _eval_recording(self, keys_: tuple[str, ...], entry_id: str, flat: list[str]) -> Any:
        try:
            return await self.redis.eval(_ACK_RECORDING_SCRIPT, len(keys_), *keys_, self.group, entry_id, *flat)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis came back without its data: the entry is gone from the stream, so nobody else holds
            # it; record it all the same, or the only trace of the post would be lost.
            await self.redis.xadd(keys_[1], dict(zip(flat[::2], flat[1::2], strict=True)))
            return 1

    async def touch(self, entry_ids: list[str]) -> None:
        """Reset the idle time of entries still in hand, so no other consumer reclaims them meanwhile."""
        if entry_ids:
            await self.redis.xclaim(
                self.stream, self.group, self.consumer, min_idle_time=0, message_ids=list[Any](entry_ids), justid=True
            )

    async def keep_claimed(self, entry_ids: list[str]) -> None:
        """While entries are in hand, renew their claim well before another consumer would take them over.

        Runs until cancelled; start it as a task beside the work and cancel it when the work is done.
        """
        interval = max(self.reclaim_idle_ms / 3000, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.touch(entry_ids)
            except Exception as exc:  # a missed renewal only risks duplicate work, never loss
                if self.health is not None and is_outage(exc):
                    self.health.went_away(exc)  # logged once per outage, not at every renewal
                else:
                    log_event(log, logging.WARNING, "could not renew claim", stream=self.stream, reason=str(exc))


def consumer_limits(settings: Settings) -> dict[str, int]:
    """How every consumer group in Paktum redelivers, reclaims and waits: from PAKTUM_MAX_DELIVERIES,
    PAKTUM_RECLAIM_IDLE_MS and PAKTUM_READ_BLOCK_MS."""
    return {
        "max_deliveries": settings.max_deliveries,
        "reclaim_idle_ms": settings.reclaim_idle_ms,
        "block_ms": settings.read_block_ms,
    }


class IngestQueue(StreamConsumer):
    """The Redis stream between publishers (scraper, import) and hashers.

    A hasher acknowledges an entry only after its image is stored and indexed; an entry that has been
    delivered more than `max_deliveries` times goes to the dead-letter stream.
    """

    def __init__(
        self, redis: Redis, settings: Settings, consumer: str | None = None, health: RedisHealth | None = None
    ) -> None:
        super().__init__(redis, settings.stream, settings.consumer_group, consumer or settings.effective_consumer_name,
                         health=health, **consumer_limits(settings))  # fmt: skip
        self.dead_stream = settings.dead_letter_stream
        self.batch_size = settings.publish_batch_size

    async def publish_posts(self, posts: Iterable[Post]) -> int:
        """XADD posts in batches (one round trip per batch); returns how many were published.

        Redis going away midway raises PublishInterruptedError with the count published until then."""
        published = 0
        batch: list[Post] = []
        try:
            for post in posts:
                batch.append(post)
                if len(batch) >= self.batch_size:
                    published += await self._publish_batch(batch)
                    batch = []
            if batch:
                published += await self._publish_batch(batch)
        except Exception as exc:
            if not is_outage(exc):
                raise
            raise PublishInterruptedError(published, len(batch), exc) from exc
        return published

    async def _publish_batch(self, batch: list[Post]) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:
            for post in batch:
                pipe.xadd(self.stream, post.to_stream())  # type: ignore[arg-type]
            await pipe.execute()
        return len(batch)

    async def dead_letter(self, delivery: Delivery, reason: str, errors: list[str] | None = None) -> bool:
        """Move an entry to the dead-letter stream with its reason (and the error of each failed delivery),
        atomically with the ack."""
        record = DeadLetter(
            entry_id=delivery.entry_id, deliveries=delivery.deliveries, reason=reason, fields=delivery.fields,
            errors=errors or [],
        )  # fmt: skip
        return await self.ack_recording(delivery.entry_id, self.dead_stream, record.to_stream())

    async def dead_letters(self, page: int = 500) -> AsyncIterator[tuple[str, DeadLetter]]:
        """Every dead letter, oldest first, read a page at a time: (its ID in the dead-letter stream, it)."""
        start = "-"
        while True:
            reply: Any = await self.redis.xrange(self.dead_stream, min=start, count=page)
            for entry_id, fields in reply:
                yield as_text(entry_id), DeadLetter.from_stream({as_text(k): as_text(v) for k, v in fields.items()})
            if len(reply) < page:
                return
            ms, seq = _id_key(as_text(reply[-1][0]))
            start = f"{ms}-{seq + 1}"

    async def replay(self, dead_id: str, letter: DeadLetter) -> bool:
        """Publish a dead letter's post to the ingest stream again and remove the dead letter, in one
        script: a crash leaves either the dead letter or the new entry, never neither or both."""
        flat = [item for pair in letter.fields.items() for item in pair]
        if not flat:
            return False  # nothing of the entry was kept: nothing to publish
        return bool(await self.redis.eval(_REPLAY_SCRIPT, 2, self.dead_stream, self.stream, dead_id, *flat))

    async def consumers(self) -> list[dict[str, Any]]:
        """The group's consumers as Redis knows them: name, pending, idle (ms since its last read)."""
        try:
            reply: Any = await self.redis.xinfo_consumers(self.stream, self.group)
        except ResponseError:  # no stream or group yet: no consumer has ever read
            return []
        return [{k: as_text(v) if isinstance(v, bytes) else v for k, v in item.items()} for item in reply]

    async def depth(self) -> tuple[int, int]:
        """(entries waiting for a hasher, entries delivered but not yet acknowledged)."""
        return await self._call(self._depth)

    async def _depth(self) -> tuple[int, int]:
        length = int(await self.redis.xlen(self.stream))
        try:
            pending: Any = await self.redis.xpending(self.stream, self.group)
        except ResponseError:  # no group yet: nothing has been delivered
            return length, 0
        in_flight = int(pending["pending"])
        return max(length - in_flight, 0), in_flight


_ACK_RECORDING_SCRIPT = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""


_REPLAY_SCRIPT = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
return 1
"""


class PublishInterruptedError(TransientError):
    """Redis went away while posts were being published: how many made it, how many were in flight."""

    def __init__(self, published: int, in_flight: int, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.published = published
        self.in_flight = in_flight


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
