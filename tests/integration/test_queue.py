"""The ingest stream against a real Redis: batches, groups, acknowledgement, reclaim, dead letters."""

import asyncio

from redis.asyncio import Redis

from paktum_common.contracts import Post
from paktum_common.queue import IngestQueue
from paktum_common.settings import Settings


def _posts(n: int) -> list[Post]:
    return [Post(source="test", source_id=str(i), file_url=f"https://example.test/{i}.jpg") for i in range(n)]


async def test_publish_sends_batches_of_fifty(redis_client: Redis, settings: Settings) -> None:
    queue = IngestQueue(redis_client, settings)
    await queue.ensure_group()
    before = await redis_client.info("commandstats")
    assert await queue.publish_posts(_posts(120)) == 120
    after = await redis_client.info("commandstats")
    assert await redis_client.xlen(settings.stream) == 120
    calls = after["cmdstat_xadd"]["calls"] - before.get("cmdstat_xadd", {"calls": 0})["calls"]
    assert calls == 120
    assert await queue.depth() == (120, 0)


async def test_entries_are_consumed_once_and_acked(redis_client: Redis, settings: Settings) -> None:
    a = IngestQueue(redis_client, settings, consumer="a")
    b = IngestQueue(redis_client, settings, consumer="b")
    await a.ensure_group()
    await a.publish_posts(_posts(10))
    first = await a.read(6)
    second = await b.read(6)
    ids = [d.entry_id for d in first + second]
    assert len(ids) == len(set(ids)) == 10
    assert all(d.deliveries == 1 for d in first + second)
    assert {Post.from_stream(d.fields).source_id for d in first + second} == {str(i) for i in range(10)}
    assert await a.depth() == (0, 10)
    await a.ack([d.entry_id for d in first])
    await b.ack([d.entry_id for d in second])
    assert await a.depth() == (0, 0)
    assert await redis_client.xlen(settings.stream) == 0


async def test_a_restarted_consumer_first_takes_back_its_own_pending(redis_client: Redis, settings: Settings) -> None:
    queue = IngestQueue(redis_client, settings, consumer="hasher-1")
    await queue.ensure_group()
    await queue.publish_posts(_posts(5))
    taken = await queue.read(3)  # ... and the process dies without acking
    restarted = IngestQueue(redis_client, settings, consumer="hasher-1")
    again = await restarted.read(10)
    assert [d.entry_id for d in again] == [d.entry_id for d in taken]
    assert all(d.deliveries == 2 for d in again)


async def test_entries_of_a_dead_consumer_are_reclaimed_after_idling(redis_client: Redis, settings: Settings) -> None:
    dead = IngestQueue(redis_client, settings, consumer="dead")
    alive = IngestQueue(redis_client, settings, consumer="alive")
    await dead.ensure_group()
    await dead.publish_posts(_posts(3))
    lost = await dead.read(3)
    assert await alive.read(3) == []  # nothing new, and nothing idle long enough yet
    await asyncio.sleep(settings.reclaim_idle_ms / 1000 + 0.1)
    reclaimed = await alive.read(3)
    assert [d.entry_id for d in reclaimed] == [d.entry_id for d in lost]
    assert all(d.deliveries == 2 for d in reclaimed)


async def test_exhausted_entries_go_to_the_dead_letter_stream(redis_client: Redis, settings: Settings) -> None:
    settings = settings.model_copy(update={"max_deliveries": 2, "reclaim_idle_ms": 0})
    queue = IngestQueue(redis_client, settings, consumer="c")
    await queue.ensure_group()
    await queue.publish_posts(_posts(1))
    deliveries = [await queue.read(1) for _ in range(3)]
    assert [d[0].deliveries for d in deliveries] == [1, 2, 3]
    last = deliveries[-1][0]
    assert queue.exhausted(last)
    await queue.dead_letter(last, "failed 2 deliveries")
    dead = await redis_client.xrange(settings.dead_letter_stream)
    assert len(dead) == 1
    record = dead[0][1]
    assert record["reason"] == "failed 2 deliveries" and record["deliveries"] == "3"
    assert Post.from_stream(record).source_id == "0"
    assert await queue.depth() == (0, 0)


async def test_an_entry_is_dead_lettered_once_even_when_two_consumers_held_it(
    redis_client: Redis, settings: Settings
) -> None:
    settings = settings.model_copy(update={"reclaim_idle_ms": 0})
    slow = IngestQueue(redis_client, settings, consumer="slow")
    fast = IngestQueue(redis_client, settings, consumer="fast")
    await slow.ensure_group()
    await slow.publish_posts(_posts(1))
    [held] = await slow.read(1)
    [reclaimed] = await fast.read(1)  # idle long enough (0 ms here): taken over while slow still works
    assert reclaimed.entry_id == held.entry_id
    assert await fast.dead_letter(reclaimed, "not an image") is True
    assert await slow.dead_letter(held, "not an image") is False
    assert await redis_client.xlen(settings.dead_letter_stream) == 1


async def test_touch_keeps_entries_from_being_reclaimed(redis_client: Redis, settings: Settings) -> None:
    holder = IngestQueue(redis_client, settings, consumer="holder")
    other = IngestQueue(redis_client, settings, consumer="other")
    await holder.ensure_group()
    await holder.publish_posts(_posts(2))
    held = await holder.read(2)
    for _ in range(4):
        await asyncio.sleep(settings.reclaim_idle_ms / 3000)
        await holder.touch([d.entry_id for d in held])
    assert await other.read(2) == []
    await asyncio.sleep(settings.reclaim_idle_ms / 1000 + 0.1)
    assert len(await other.read(2)) == 2
