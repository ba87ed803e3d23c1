"""`paktum cleanup` and `paktum-cleanup` as processes: exit codes, the summary, and a run killed mid-write."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from paktum_common import keys
from paktum_common.contracts import ImageDocument, Rating
from paktum_common.groups import VariantGroup
from paktum_common.search.sqlite import SqliteSearch
from paktum_common.settings import Settings


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAKTUM_")}
    env.update(PAKTUM_DATA_DIR=str(settings.data_dir), PAKTUM_REDIS_URL=str(settings.redis_url), **extra)
    return env


def document(index: int, phash: int) -> ImageDocument:
    md5 = f"{index:032x}"
    return ImageDocument(
        ID=md5, Tags=["synthetic"],
        Tagstring="synthetic", Rating=Rating.general, Added="1700000000", PHash=phash, Size=1, Width=1, Height=1,
        Filename=f"{md5}.jpg",
    )  # fmt: skip


async def fill_pairs(settings: Settings, pairs: int) -> None:
    """`pairs` pictures each indexed twice, 3 bits apart: that many groups for a run to write."""
    rng = random.Random(1)
    search = SqliteSearch(settings.effective_search_url.removeprefix("sqlite:///"))
    docs: list[ImageDocument] = []
    for index in range(pairs):
        while True:
            base = rng.getrandbits(64)
            if 24 <= base.bit_count() <= 40:
                break
        docs += [document(2 * index, base), document(2 * index + 1, base ^ 0b10101)]
    for start in range(0, len(docs), 2000):
        await search.add_documents(docs[start : start + 2000])
    await search.close()


def test_paktum_cleanup_prints_a_summary_and_fails_with_a_non_zero_code(settings: Settings, tmp_path: Path) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ok = subprocess.run(
        [sys.executable, "-m", "paktum_cli.main", "cleanup"], env=env_for(settings), capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "paktum cleanup: purge: 0 images purged" in ok.stdout and "cleanup finished" in ok.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "paktum_cleanup.main", "--repair"],
        env=env_for(settings, PAKTUM_BANNED_TAGS_FILE=str(tmp_path / "missing.txt")),
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert "FAILED at banned tags" in failed.stdout and "previous variant groups are unchanged" in failed.stdout


async def test_a_run_killed_while_writing_leaves_the_old_groups(settings: Settings) -> None:
    client = redis.Redis.from_url(str(settings.redis_url), decode_responses=True)
    old = VariantGroup.around("e" * 32, {"e" * 32: 0x0F0F0F0F0F0F0F0F, "f" * 32: 0x0F0F0F0F0F0F0F0E})
    client.hset(keys.GROUP_MEMBERS, old.anchor, old.to_json())
    client.hset(keys.GROUP_OF, mapping={"e" * 32: old.anchor, "f" * 32: old.anchor})
    before = (client.hgetall(keys.GROUP_MEMBERS), client.hgetall(keys.GROUP_OF))
    await fill_pairs(settings, 8_000)  # 8 batches of groups to write: time to be killed between two
    process = subprocess.Popen(
        [sys.executable, "-m", "paktum_cleanup.main"], env=env_for(settings), stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not list(client.scan_iter(f"{keys.GROUPS_BUILD}:*", count=1000)):
            assert process.poll() is None, "the run finished before it could be killed mid-write"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (client.hgetall(keys.GROUP_MEMBERS), client.hgetall(keys.GROUP_OF)) == before
    leftovers = list(client.scan_iter(f"{keys.GROUPS_BUILD}:*"))
    assert leftovers and all(client.ttl(key) > 0 for key in leftovers)
    client.close()
