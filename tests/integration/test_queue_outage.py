"""A consumer group reader with a RedisHealth rides out a Redis restart and carries on where it was: its own
pending entries first (with persistence), or a group made again (without)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import REGISTRY

from paktum_common.contracts import Post
from paktum_common.queue import IngestQueue
from paktum_common.redis_client import RedisHealth, connect
from paktum_common.settings import Settings
from tests.faults import RestartableRedis


def _posts(n: int) -> list[Post]:
    return [Post(source="testbooru", source_id=str(i), file_url=f"https://files.example/{i}.jpg") for i in range(n)]


def _up(service: str) -> float | None:
    return REGISTRY.get_sample_value("paktum_redis_up", {"service": service})


async def test_entries_in_hand_before_a_restart_come_back_first_without_waiting_for_a_reclaim(
    tmp_path: Path, own_redis: RestartableRedis
) -> None:
    # A reclaim an hour away: only re-reading its own pending list can give the consumer its entries back.
    settings = Settings(data_dir=tmp_path, redis_url=own_redis.url, reclaim_idle_ms=3_600_000, read_block_ms=100)
    redis = connect(own_redis.url)
    health = RedisHealth(redis, "queue-test-persist")
    queue = IngestQueue(redis, settings, consumer="c1", health=health)
    await queue.ensure_group()
    await queue.publish_posts(_posts(3))
    first = await queue.read(10)
    assert len(first) == 3

    await asyncio.to_thread(own_redis.kill)
    reading = asyncio.create_task(queue.read(10))  # started while Redis is away: it waits
    await asyncio.sleep(1.0)
    assert not reading.done() and _up("queue-test-persist") == 0
    await asyncio.to_thread(own_redis.start)
    again = await asyncio.wait_for(reading, 60)

    assert [d.entry_id for d in again] == [d.entry_id for d in first]
    assert [d.deliveries for d in again] == [2, 2, 2]
    assert health.up and health.outages == 1 and _up("queue-test-persist") == 1
    await queue.ack([d.entry_id for d in again])
    assert await queue.depth() == (0, 0)
    await redis.aclose()


async def test_a_redis_back_without_its_data_gets_the_group_made_again(
    tmp_path: Path, own_redis: RestartableRedis
) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=own_redis.url, read_block_ms=100)
    redis = connect(own_redis.url)
    queue = IngestQueue(redis, settings, consumer="c1", health=RedisHealth(redis, "queue-test-wipe"))
    await queue.ensure_group()
    await queue.publish_posts(_posts(2))
    held = await queue.read(10)

    await asyncio.to_thread(own_redis.kill)
    await asyncio.to_thread(own_redis.wipe)
    await asyncio.to_thread(own_redis.start)
    await queue.ack([d.entry_id for d in held])  # the entries went with Redis: nothing to acknowledge, no error
    await queue.publish_posts(_posts(1))
    fresh = await queue.read(10)

    assert len(fresh) == 1 and fresh[0].deliveries == 1
    await redis.aclose()
