"""The catalog, through each of its callers: the hasher's admission, admin delete (GraphQL), the purge and the
sweep, on real Redis, a real SQLite index, real files and the real hasher."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from paktum_cleanup.run import run_cleanup
from paktum_common import keys
from paktum_common.groups import related_many
from paktum_common.registry import IMAGES, PURGED
from paktum_scraper.local import ImportReport, local_posts
from tests.imagefiles import encode, picture
from tests.integration.apiserver import serve
from tests.integration.pipeline import Pipeline

TOKEN = "catalog-admin-token"


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def files_in(pipeline: Pipeline) -> set[str]:
    # Both thumbnails (thumbnails/ and thumbnails/small/) have the same name: one name, both removed or neither.
    return {
        p.name for d in (pipeline.store.images_dir, pipeline.store.thumbnails_dir) for p in d.rglob("*") if p.is_file()
    }


def write(folder: Path, name: str, seed: int, quality: int = 90, size: tuple[int, int] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    image = picture(seed)
    if size:
        image = image.resize(size)
    path = folder / name
    path.write_bytes(encode(image, "JPEG", quality=quality))
    return path


async def ingest(pipeline: Pipeline, folder: Path, tags: list[str]) -> None:
    await pipeline.queue.publish_posts(local_posts(folder, tags, None, ImportReport()))
    await pipeline.drain()


async def dead_letters(pipeline: Pipeline, redis: Redis) -> list[str]:
    return [fields["reason"] for _, fields in await redis.xrange(pipeline.settings.dead_letter_stream)]


async def test_a_reupload_of_a_purged_picture_is_refused_before_any_file_is_written(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    original = write(tmp_path / "first", "a.jpg", 31)
    await ingest(pipeline, original.parent, ["cat"])
    await pipeline.catalog.remove([md5_of(original)], ban=True, reason="test")
    assert files_in(pipeline) == set()

    reupload = write(tmp_path / "again", "b.jpg", 31, quality=60)  # re-encoded: another md5, the same picture
    assert md5_of(reupload) != md5_of(original)
    seen: set[str] = set()

    async def watch() -> None:
        while True:
            seen.update(files_in(pipeline))
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    try:
        await ingest(pipeline, reupload.parent, ["cat"])
    finally:
        watcher.cancel()
    assert seen == set() and files_in(pipeline) == set()  # not even for a moment: nothing to remove again
    [reason] = await dead_letters(pipeline, redis_client)
    assert reason.startswith(f"a re-upload of the purged image {md5_of(original)}")
    assert await pipeline.search.count() == 0
    # Its md5 is banned too, so a scraper skips the file next time without downloading it.
    assert (await pipeline.catalog.standing([md5_of(reupload)]))[md5_of(reupload)].banned


@pytest.mark.parametrize("registered", [True, False], ids=["registered", "registration-failed"])
async def test_a_file_we_have_is_a_duplicate_even_near_a_purged_picture(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis, registered: bool
) -> None:
    kept = write(tmp_path / "kept", "a.jpg", 32)
    deleted = write(tmp_path / "deleted", "b.jpg", 32, quality=60)
    await ingest(pipeline, kept.parent, ["cat"])
    await ingest(pipeline, deleted.parent, ["cat"])
    await pipeline.catalog.remove([md5_of(deleted)], ban=True, reason="test")
    if not registered:  # the index write went through, the registration after it did not
        await IMAGES.remove(redis_client, [md5_of(kept)])
    # The kept copy scraped again with more tags: merged, never refused for being near the deleted one.
    await ingest(pipeline, kept.parent, ["cat", "more"])
    assert await dead_letters(pipeline, redis_client) == []
    assert not (await pipeline.catalog.standing([md5_of(kept)]))[md5_of(kept)].banned
    doc = await pipeline.search.get_document(md5_of(kept))
    assert doc is not None and doc.Tags == ["cat", "more"]
    summary = await run_cleanup(pipeline.settings)
    assert summary.ok and summary.purge is not None and summary.purge.total == 0, summary.lines()
    assert await pipeline.search.get_document(md5_of(kept)) is not None


async def test_admin_delete_removes_everywhere_and_bans_unless_told_not_to(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    first = write(tmp_path / "in", "a.jpg", 33)
    copy = write(tmp_path / "in", "b.jpg", 33, size=(320, 240))  # a half-size variant: grouped with the first
    other = write(tmp_path / "in", "c.jpg", 34)
    await ingest(pipeline, tmp_path / "in", ["cat"])
    banned, kept, spared = md5_of(first), md5_of(copy), md5_of(other)
    assert [m for m, _ in (await related_many(redis_client, [kept]))[kept]] == [banned]

    with serve(pipeline.settings.model_copy(update={"admin_token": SecretStr(TOKEN)})) as api:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        body = api.post("/query", json={"query": f'mutation {{ deleteImage(ID: "{banned}") }}'}, headers=auth).json()
        assert body == {"data": {"deleteImage": True}}
        query = f'mutation {{ deleteImage(ID: "{spared}", ban: false) }}'
        assert api.post("/query", json={"query": query}, headers=auth).json() == {"data": {"deleteImage": True}}

    assert set(await pipeline.search.get_documents([banned, kept, spared])) == {kept}
    assert files_in(pipeline) == {f"{kept}.jpg"}  # its original and its thumbnail (both named so)
    assert await IMAGES.get(redis_client, [banned, spared]) == {}
    assert (await related_many(redis_client, [kept]))[kept] == []
    assert set(await PURGED.get(redis_client, [banned, spared])) == {banned}

    # The next scrape or import brings back the one deleted without a ban, never the banned one.
    await ingest(pipeline, tmp_path / "in", ["cat"])
    assert set(await pipeline.search.get_documents([banned, kept, spared])) == {kept, spared}
    assert await dead_letters(pipeline, redis_client) == [f"md5 {banned} was removed for good and is banned"]

    # And the cleanup run keeps the copy that was there before its sibling was deleted.
    summary = await run_cleanup(pipeline.settings)
    assert summary.ok and summary.purge is not None and summary.purge.total == 0, summary.lines()
    assert set(await pipeline.search.get_documents([kept, spared])) == {kept, spared}


async def test_the_purge_finishes_a_removal_cut_short_after_its_ban(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    path = write(tmp_path / "in", "a.jpg", 35)
    await ingest(pipeline, path.parent, ["cat"])
    md5 = md5_of(path)
    await redis_client.sadd(keys.BANNED_MD5, md5)  # the removal's first step, and then the process died

    summary = await run_cleanup(pipeline.settings)
    assert summary.ok and summary.purge is not None and summary.purge.unfinished == 1, summary.lines()
    assert await pipeline.search.get_document(md5) is None
    assert files_in(pipeline) == set()
    assert await IMAGES.get(redis_client, [md5]) == {}


@pytest.mark.parametrize("cut_after", ["index", "files"])
async def test_the_sweep_repairs_a_removal_cut_short_after_the_index(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis, cut_after: str
) -> None:
    path = write(tmp_path / "in", "a.jpg", 36)
    copy = write(tmp_path / "in", "b.jpg", 36, size=(320, 240))
    await ingest(pipeline, tmp_path / "in", ["cat"])
    md5 = md5_of(path)
    await pipeline.search.delete_documents([md5])  # the removal's index step, and then the process died
    if cut_after == "files":
        pipeline.store.delete(md5)
    settings = pipeline.settings.model_copy(update={"cleanup_grace_seconds": 0})

    found = await run_cleanup(settings)
    assert found.sweep is not None and found.sweep.orphan_registry == [md5], found.lines()
    repaired = await run_cleanup(settings, repair=True)
    assert repaired.ok, repaired.lines()
    assert files_in(pipeline) == {f"{md5_of(copy)}.jpg"}
    assert await IMAGES.get(redis_client, [md5]) == {}
    assert (await related_many(redis_client, [md5_of(copy)]))[md5_of(copy)] == []
    again = await run_cleanup(settings)
    assert again.sweep is not None and again.sweep.problems == 0, again.lines()


async def test_the_purge_removes_a_reupload_that_slipped_in_after_a_removal_and_keeps_older_copies(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    original = write(tmp_path / "in", "a.jpg", 37)
    older = write(tmp_path / "in", "b.jpg", 37, size=(320, 240))
    await ingest(pipeline, tmp_path / "in", ["cat"])
    await pipeline.catalog.remove([md5_of(original)], ban=True, reason="test")
    # A re-upload admitted by a hasher that checked just before the ban was written (a race), indexed after
    # it: written as the hasher writes, from the admission check on. Its Added is the time of its index write.
    await asyncio.sleep(1.1)  # Added is in whole seconds: the write lands in a later second than the removal
    late = write(tmp_path / "late", "c.jpg", 37, quality=50)
    doc = (await pipeline.search.get_document(md5_of(older))).model_copy(  # type: ignore[union-attr]
        update={"ID": md5_of(late), "Filename": f"{md5_of(late)}.jpg", "Added": "0"}
    )
    await pipeline.catalog.store_files(doc.ID, doc.Filename, late.read_bytes(), late.read_bytes())
    await pipeline.catalog.index([doc])

    summary = await run_cleanup(pipeline.settings)
    assert summary.ok and summary.purge is not None, summary.lines()
    assert (summary.purge.near_purged, summary.purge.total) == (1, 1)
    assert set(await pipeline.search.get_documents([md5_of(older), md5_of(late)])) == {md5_of(older)}
    assert files_in(pipeline) == {f"{md5_of(older)}.jpg"}
    assert await redis_client.sismember(keys.BANNED_MD5, md5_of(late))
