"""Hostile files against the real decode pool and the real hasher: budgets that stop a worker, the rest of the batch
indexed meanwhile, and no decode process outliving a SIGKILLed hasher."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from redis.asyncio import Redis

from paktum_common.contracts import Post
from paktum_common.errors import BadImageError
from paktum_common.queue import IngestQueue
from paktum_common.search import open_search
from paktum_common.settings import Settings
from paktum_hasher.decode import decode_image
from paktum_hasher.pool import DecodeAbortedError, DecodePool
from paktum_scraper.local import ImportReport, local_posts
from tests.hostile import jpeg_scan_bomb
from tests.imagefiles import encode, good_images, picture
from tests.integration.pipeline import open_pipeline

MAX_PIXELS = 120_000_000
# 100 scans (the most accepted up front) over 36 megapixels: seconds of CPU for libjpeg in a full decode
# (2.2 s on the development machine), several times the budget the tests give it.
SLOW_SCANS, SLOW_SIDE = 100, 6000
BUDGET = 0.5


@pytest.fixture(scope="module")
def slow_jpeg() -> bytes:
    return jpeg_scan_bomb(SLOW_SCANS, (SLOW_SIDE, SLOW_SIDE))


@pytest.fixture
def pool() -> Iterator[DecodePool]:
    decode_pool = DecodePool(1, cpu_seconds=BUDGET, memory_mib=256)
    yield decode_pool
    decode_pool.shutdown()


def good_jpeg() -> bytes:
    return encode(picture(7, (320, 240)), "JPEG", quality=90)


def test_a_decode_over_its_cpu_budget_is_stopped_and_its_worker_replaced(pool: DecodePool, slow_jpeg: bytes) -> None:
    future = pool.submit(decode_image, slow_jpeg, MAX_PIXELS, 300, "exact", memory_mib=256)
    with pytest.raises(DecodeAbortedError, match=r"more than 0.5 s of CPU \(PAKTUM_DECODE_CPU_SECONDS\)"):
        future.result()
    assert pool.submit(decode_image, good_jpeg(), MAX_PIXELS, 300, "exact", memory_mib=256).result().width == 320


def _cpu_seconds_of_pbkdf2(iterations: int) -> float:
    start = time.process_time()
    hashlib.pbkdf2_hmac("sha256", b"paktum", b"salt", iterations)
    return time.process_time() - start


def test_the_cpu_budget_holds_to_a_fraction_of_a_second(pool: DecodePool) -> None:
    # RLIMIT_CPU alone counts whole seconds, so a fresh worker could spend nearly two on a 0.5 s budget.
    # Work of three budgets' worth (measured here, in this process) must be stopped.
    iterations = 200_000
    while (spent := _cpu_seconds_of_pbkdf2(iterations)) < 0.05:
        iterations *= 4
    work = int(iterations * 3 * BUDGET / spent)
    with pytest.raises(DecodeAbortedError, match=r"more than 0.5 s of CPU"):
        pool.submit(hashlib.pbkdf2_hmac, "sha256", b"paktum", b"salt", work).result()
    # Within the budget, the same worker slot answers (a fresh worker after the stop).
    assert len(pool.submit(hashlib.pbkdf2_hmac, "sha256", b"paktum", b"salt", work // 30).result()) == 32


def test_a_worker_killed_mid_decode_is_reported_as_killed(slow_jpeg: bytes) -> None:
    pool = DecodePool(1, cpu_seconds=600, memory_mib=256)
    try:
        future = pool.submit(decode_image, slow_jpeg, MAX_PIXELS, 300, "exact", memory_mib=256)
        while not pool.worker_pids():
            time.sleep(0.01)
        [pid] = pool.worker_pids()
        os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer would
        with pytest.raises(DecodeAbortedError, match="killed by SIGKILL while decoding this file"):
            future.result()
        assert pool.submit(decode_image, good_jpeg(), MAX_PIXELS, 300).result().width == 320
        assert pool.worker_pids() != [pid]
    finally:
        pool.shutdown()


def test_a_decode_that_stalls_without_spending_cpu_is_stopped_by_the_watchdog() -> None:
    pool = DecodePool(1, cpu_seconds=60, memory_mib=256, wall_seconds=1)
    try:
        # time.sleep stands for a decoder blocked on something: no CPU spent, so the CPU timer never fires.
        with pytest.raises(DecodeAbortedError, match="decode stopped after 1 s without finishing"):
            pool.submit(time.sleep, 600).result()
        assert pool.submit(decode_image, good_jpeg(), MAX_PIXELS, 300).result().width == 320
    finally:
        pool.shutdown()


def test_an_allocation_past_the_memory_budget_fails_in_the_worker_not_the_machine(pool: DecodePool) -> None:
    # bytearray stands for a decoder the estimate missed: RLIMIT_AS turns its allocation into the refusal.
    with pytest.raises(BadImageError, match=r"too large to decode in 256 MiB"):
        pool.submit(bytearray, 4 * 1024 * 1024 * 1024).result()
    assert pool.submit(bytearray, 1024).result() == bytearray(1024)


async def test_a_cpu_bomb_costs_its_post_only_and_the_batch_is_indexed(
    tmp_path: Path, settings: Settings, redis_client: Redis, slow_jpeg: bytes
) -> None:
    folder = tmp_path / "in"
    good_images(folder, 3)
    (folder / "bomb.jpg").write_bytes(slow_jpeg)
    tight = settings.model_copy(update={"decode_cpu_seconds": BUDGET, "phash_mode": "exact"})
    async with open_pipeline(tight, redis_client) as pipeline:
        await pipeline.queue.publish_posts(local_posts(folder, [], None, ImportReport()))
        await pipeline.drain()
        assert await pipeline.search.count() == 3
    dead = await redis_client.xrange(settings.dead_letter_stream)
    assert [(Post.from_stream(f).source_id, f["reason"]) for _, f in dead] == [
        ("bomb.jpg", "decode took more than 0.5 s of CPU (PAKTUM_DECODE_CPU_SECONDS); stopped")
    ]


def _hasher_env(settings: Settings, folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PAKTUM_DATA_DIR=str(settings.data_dir),
        PAKTUM_REDIS_URL=str(settings.redis_url),
        PAKTUM_LOCAL_ROOTS=str(folder),
        PAKTUM_HASHER_WORKERS="2",
        PAKTUM_READ_BLOCK_MS="100",
        PAKTUM_LOG_LEVEL="WARNING",
    )
    return env


async def test_a_sigkilled_hasher_leaves_no_decode_process_behind(
    tmp_path: Path, settings: Settings, redis_client: Redis, slow_jpeg: bytes
) -> None:
    folder = tmp_path / "in"
    good_images(folder, 4)
    env = dict(_hasher_env(settings, folder), PAKTUM_PHASH_MODE="exact")
    hasher = subprocess.Popen([sys.executable, "-m", "paktum_hasher.main"], env=env, stdout=subprocess.DEVNULL)
    descendants: list[psutil.Process] = []
    try:
        queue = IngestQueue(redis_client, settings)
        await queue.publish_posts(local_posts(folder, [], None, ImportReport()))
        search = open_search(settings)
        try:
            async with asyncio.timeout(120):
                while await search.count() < 4:  # decoded: the fork server and both workers exist
                    await asyncio.sleep(0.1)
            # One worker busy in a long decode when the hasher dies (it reads no pipe then: only the kernel's
            # death signal can stop it); the other idle.
            slow = folder / "later" / "slow.jpg"
            slow.parent.mkdir()
            slow.write_bytes(slow_jpeg)
            await queue.publish_posts([Post(source="local", source_id="slow", file_url=slow.as_uri())])
            async with asyncio.timeout(120):
                while not any(_busy(p, hasher.pid) for p in psutil.Process(hasher.pid).children(recursive=True)):
                    await asyncio.sleep(0.1)
        finally:
            await search.close()
        descendants = psutil.Process(hasher.pid).children(recursive=True)
        names = sorted(" ".join(p.cmdline())[:60] for p in descendants)
        assert len(descendants) >= 4, names  # fork server, resource tracker, two decode workers
    finally:
        hasher.send_signal(signal.SIGKILL)
        hasher.wait()
    _, alive = psutil.wait_procs(descendants, timeout=30)
    assert not alive, [" ".join(p.cmdline()) for p in alive]


def _busy(process: psutil.Process, hasher: int) -> bool:
    """A decode worker (a child of the fork server, not of the hasher) well into a decode."""
    try:
        return process.ppid() != hasher and process.cpu_times().user > 0.3
    except psutil.NoSuchProcess:
        return False
