"""Cleanup runs on an index the real hasher filled from real image files: groups, purge, sweep, failures."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from redis.asyncio import Redis

from paktum_cleanup.catalogue import load_catalogue
from paktum_cleanup.grouping import regroup_all
from paktum_cleanup.progress import Progress
from paktum_cleanup.run import CleanupBusyError, cleanup_lock, run_cleanup
from paktum_common import keys
from paktum_common.errors import PaktumError
from paktum_common.groups import group_stats, related_many
from paktum_common.phash import ALTERNATE_PENALTY, simhash_of
from paktum_common.registry import IMAGES, PURGED
from paktum_common.settings import Settings
from paktum_hasher.phash import phash_int
from paktum_scraper.local import ImportReport, local_posts
from tests.imagefiles import drawing, encode, flattened, picture
from tests.integration.pipeline import Pipeline

FIXTURES = Path(__file__).parents[1] / "fixtures"


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def planted_variants(folder: Path, seed: int) -> list[Path]:
    """One picture and three variants of it: resized to half, re-encoded at low quality, cropped 1% all round."""
    folder.mkdir(parents=True, exist_ok=True)
    image = picture(seed)
    width, height = image.size
    dx, dy = width // 100, height // 100
    files = {
        f"{seed}-original.jpg": encode(image, "JPEG", quality=90),
        f"{seed}-half.png": encode(image.resize((width // 2, height // 2)), "PNG"),
        f"{seed}-low.jpg": encode(image, "JPEG", quality=40),
        f"{seed}-crop.jpg": encode(image.crop((dx, dy, width - dx, height - dy)), "JPEG", quality=85),
    }
    paths = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def transparent_line_art(folder: Path, count: int) -> list[Path]:
    """Black strokes on a transparent background, and fully transparent images: never one big group."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        rng = random.Random(index)
        image = Image.new("RGBA", (400 + index, 400), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        if index % 3:  # every third stays fully transparent
            for _ in range(8):
                draw.line([(rng.randrange(400), rng.randrange(400)) for _ in range(3)], fill=(0, 0, 0, 255), width=4)
        path = folder / f"line-{index}.png"
        path.write_bytes(encode(image, "PNG"))
        paths.append(path)
    return paths


async def ingest(pipeline: Pipeline, folder: Path, tags: list[str]) -> None:
    await pipeline.queue.publish_posts(local_posts(folder, tags, None, ImportReport()))
    await pipeline.drain()


async def groups_now(redis: Redis, ids: list[str]) -> set[frozenset[str]]:
    related = await related_many(redis, ids)
    return {frozenset([i, *(other for other, _ in related[i])]) for i in ids if related[i]}


async def test_planted_variants_group_at_once_and_after_a_full_run(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    planted = [planted_variants(tmp_path / "in" / "variants", seed) for seed in range(3)]
    singles = [tmp_path / "in" / "variants" / f"single-{s}.jpg" for s in (10, 11, 12)]
    for seed, path in zip((10, 11, 12), singles, strict=True):
        path.write_bytes(encode(picture(seed), "JPEG", quality=90))
    lines = transparent_line_art(tmp_path / "in" / "lines", 6)
    await ingest(pipeline, tmp_path / "in", ["test"])
    expected = {frozenset(md5_of(p) for p in group) for group in planted}
    every = [md5_of(p) for p in [*(p for group in planted for p in group), *singles, *lines]]
    assert await pipeline.search.count() == len(every)
    # The hasher linked them as it indexed them: no cleanup run needed.
    assert await groups_now(redis_client, every) == expected

    summary = await run_cleanup(pipeline.settings)
    assert summary.ok, summary.lines()
    assert summary.groups is not None and summary.groups.groups == 3 and summary.groups.largest == 4
    assert await groups_now(redis_client, every) == expected
    stats = await group_stats(redis_client)
    assert (stats.groups, stats.largest, stats.grouped_images, stats.distance) == (3, 4, 12, 10)
    original = md5_of(planted[0][0])
    related = (await related_many(redis_client, [original]))[original]
    assert [bits for _, bits in related] == sorted(bits for _, bits in related) and all(b <= 10 for _, b in related)


async def test_purge_removes_banned_images_everywhere_and_refuses_their_reupload(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    banned_pictures, others = (lambda p: (p[:2], p[2:]))(planted_variants(tmp_path / "banned", 21))
    for path in others:  # keep the original and its half-size copy only
        path.unlink()
    kept = planted_variants(tmp_path / "kept", 22)
    await ingest(pipeline, tmp_path / "banned", ["cat", "gore"])
    await ingest(pipeline, tmp_path / "kept", ["cat"])
    settings = pipeline.settings.model_copy(update={"banned_tags": ["gore", "other"]})
    store = pipeline.store

    summary = await run_cleanup(settings)
    assert summary.ok, summary.lines()
    assert summary.purge is not None and (summary.purge.banned_tag, summary.purge.near_purged) == (2, 0)
    gone = [md5_of(p) for p in banned_pictures]
    assert await pipeline.search.get_documents(gone) == {}
    assert await pipeline.search.count() == len(kept)
    for path, md5 in zip(banned_pictures, gone, strict=True):
        assert not store.image_path(f"{md5}{path.suffix}").exists() and not store.thumbnail_path(md5).exists()
        assert await redis_client.sismember(keys.BANNED_MD5, md5)
    assert set(await PURGED.get(redis_client, gone)) == set(gone)
    assert await IMAGES.get(redis_client, gone) == {}
    assert await related_many(redis_client, gone) == {md5: [] for md5 in gone}

    # A scraped re-upload of the same picture, re-encoded (another md5) and innocently tagged: refused.
    reupload = tmp_path / "again" / "again.jpg"
    reupload.parent.mkdir()
    reupload.write_bytes(encode(picture(21), "JPEG", quality=55))
    assert md5_of(reupload) not in gone
    await ingest(pipeline, reupload.parent, ["cat"])
    assert await pipeline.search.get_document(md5_of(reupload)) is None
    assert not store.image_path(f"{md5_of(reupload)}.jpg").exists()
    assert await redis_client.sismember(keys.BANNED_MD5, md5_of(reupload))
    assert await pipeline.search.count() == len(kept)


async def test_purge_also_removes_untagged_copies_of_a_banned_picture(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    original = planted_variants(tmp_path / "in", 23)[0]
    (tmp_path / "tagged").mkdir()
    original.rename(tmp_path / "tagged" / original.name)
    await ingest(pipeline, tmp_path / "tagged", ["gore"])
    await ingest(pipeline, tmp_path / "in", ["cat"])
    summary = await run_cleanup(pipeline.settings.model_copy(update={"banned_tags": ["gore"]}))
    assert summary.purge is not None and (summary.purge.banned_tag, summary.purge.near_purged) == (1, 3)
    assert await pipeline.search.count() == 0


async def test_sweep_reports_then_repairs(tmp_path: Path, pipeline: Pipeline, redis_client: Redis) -> None:
    files = planted_variants(tmp_path / "in", 30)
    await ingest(pipeline, tmp_path / "in", ["cat"])
    store = pipeline.store
    old = 1_000_000_000  # long before any grace period
    stray_image = store.images_dir / ("a" * 32 + ".jpg")
    stray_image.write_bytes(encode(picture(31), "JPEG"))
    stray_thumb = store.thumbnail_path("b" * 32)
    stray_thumb.write_bytes(encode(picture(32), "JPEG"))
    stray_small = store.small_thumbnail_path("e" * 32)  # a crash after the smaller thumbnail, before the rest
    stray_small.write_bytes(encode(picture(34), "JPEG"))
    young = store.images_dir / ("c" * 32 + ".png")  # in flight: the hasher indexes after storing
    young.write_bytes(encode(picture(33), "PNG"))
    for path in (stray_image, stray_thumb, stray_small):
        os.utime(path, (old, old))
    lost = md5_of(files[1])
    store.image_path(f"{lost}.png").unlink()
    unregistered = md5_of(files[2])
    await IMAGES.remove(redis_client, [unregistered])
    await IMAGES.add(redis_client, {"d" * 32: 0x0123456789ABCDEF})

    report = (await run_cleanup(pipeline.settings)).sweep
    assert report is not None and not report.repaired
    assert report.orphan_files == [
        f"images/{stray_image.name}", f"thumbnails/{stray_thumb.name}", f"thumbnails/small/{stray_small.name}"
    ]  # fmt: skip
    assert report.missing_files == [lost]
    assert report.orphan_registry == ["d" * 32]
    assert report.unregistered == [unregistered]
    assert stray_image.exists() and await pipeline.search.get_document(lost) is not None

    repaired = await run_cleanup(pipeline.settings, repair=True)
    assert repaired.ok and repaired.sweep is not None and repaired.sweep.problems == 6
    assert not stray_image.exists() and not stray_thumb.exists() and not stray_small.exists() and young.exists()
    assert await pipeline.search.get_document(lost) is None and not store.thumbnail_path(lost).exists()
    assert set(await IMAGES.get(redis_client, [unregistered, "d" * 32, lost])) == {unregistered}
    assert lost not in {m for m, _ in (await related_many(redis_client, [md5_of(files[0])]))[md5_of(files[0])]}
    again = await run_cleanup(pipeline.settings)
    assert again.sweep is not None and again.sweep.problems == 0


async def test_repair_enters_transparent_images_registered_before_the_other_background_table(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    original = (await pipeline.index_files(tmp_path / "in", {"drawing.png": encode(drawing(), "PNG")}, ["drawing"]))[
        "drawing.png"
    ]
    on_black = phash_int(flattened(drawing(), (0, 0, 0)))
    assert (await IMAGES.near_any(redis_client, [(on_black,)], 10))[0] == [(original, ALTERNATE_PENALTY)]
    for key in [k async for k in redis_client.scan_iter(f"{keys.OTHER_BACKGROUND_CHUNKS}:*")]:
        await redis_client.delete(key)  # as an image registered before the table existed
    assert (await IMAGES.near_any(redis_client, [(on_black,)], 10))[0] == []
    assert (await run_cleanup(pipeline.settings)).ok  # without --repair: left as it is
    assert (await IMAGES.near_any(redis_client, [(on_black,)], 10))[0] == []
    assert (await run_cleanup(pipeline.settings, repair=True)).ok
    assert (await IMAGES.near_any(redis_client, [(on_black,)], 10))[0] == [(original, ALTERNATE_PENALTY)]


async def test_every_cleanup_enters_the_simhashes_of_images_registered_before_their_table(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    # Smooth wallpapers, whose pHashes are fragile: they may have signature neighbours, so they have SimHashes.
    smooth = (
        "plasma-ColdRipple-screenshot.jpg",
        "plasma-DarkestHour-screenshot.jpg",
        "plasma-summer_1am-screenshot.jpg",
    )
    pictures = {name: (FIXTURES / "real" / "jpeg" / name).read_bytes() for name in smooth}
    pictures["p0.png"] = encode(picture(0), "PNG")  # a picture whose pHash is not fragile: none
    ids = await pipeline.index_files(tmp_path / "in", pictures, ["picture"])
    documents = await pipeline.search.get_documents(list(ids.values()))
    expected = {md5: simhash_of(doc.signature) for md5, doc in documents.items()}
    assert expected.pop(ids["p0.png"]) is None and len(expected) == 3 and None not in expected.values()
    assert await IMAGES.scan_simhashes(redis_client) == expected  # as the hasher registered them
    first = next(iter(expected))
    query = [(documents[first].PHash ^ (2**64 - 1),)]  # far from every pHash: found by its SimHash alone
    assert (await IMAGES.near_any(redis_client, query, 10, [None], [expected[first]]))[0][0] == (first, 11)
    simhash_keys = [k async for k in redis_client.scan_iter(f"{keys.SIMHASH_CHUNKS}:*")]
    await redis_client.delete(keys.SIMHASHES, *simhash_keys)  # as images registered before the table existed
    assert (await IMAGES.near_any(redis_client, query, 10, [None], [expected[first]]))[0] == []

    summary = await run_cleanup(pipeline.settings)  # no --repair needed

    assert summary.ok and summary.sweep is not None and summary.sweep.simhashes_entered == len(expected)
    assert f"{len(expected)} SimHashes entered" in " ".join(summary.lines())
    assert await IMAGES.scan_simhashes(redis_client) == expected
    assert (await IMAGES.near_any(redis_client, query, 10, [None], [expected[first]]))[0][0] == (first, 11)
    again = await run_cleanup(pipeline.settings)
    assert again.sweep is not None and again.sweep.simhashes_entered == 0


async def test_a_failed_step_leaves_the_groups_and_reports_it(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis, settings: Settings
) -> None:
    files = planted_variants(tmp_path / "in", 40)
    await ingest(pipeline, tmp_path / "in", ["cat"])
    assert (await run_cleanup(pipeline.settings)).ok
    before = await redis_client.hgetall(keys.GROUP_MEMBERS)
    broken = pipeline.settings.model_copy(update={"banned_tags_file": tmp_path / "no-such-file.txt"})
    summary = await run_cleanup(broken)
    assert not summary.ok and summary.failed_step == "banned tags" and summary.groups is None
    assert "previous variant groups are unchanged" in summary.lines()[-2]
    assert await redis_client.hgetall(keys.GROUP_MEMBERS) == before
    assert len(before) == 1 and all(md5_of(f) in next(iter(before.values())) for f in files)


async def test_a_second_run_does_not_overlap_the_first(pipeline: Pipeline, redis_client: Redis) -> None:
    await redis_client.set(keys.CLEANUP_LOCK, "another-run", ex=60)
    summary = await run_cleanup(pipeline.settings)
    assert not summary.ok and summary.failed_step == "lock" and "in progress" in summary.error
    assert await redis_client.get(keys.CLEANUP_LOCK) == "another-run"


async def test_a_run_is_refused_while_another_holds_the_lock(pipeline: Pipeline, redis_client: Redis) -> None:
    async with cleanup_lock(redis_client):
        summary = await run_cleanup(pipeline.settings)
        assert summary.failed_step == "lock"
        assert summary.error == "CleanupBusyError: another cleanup run is in progress"
        with pytest.raises(PaktumError, match="another cleanup run is in progress"):
            async with cleanup_lock(redis_client):
                pass
    assert not await redis_client.exists(keys.CLEANUP_LOCK)  # released at the end
    assert (await run_cleanup(pipeline.settings)).ok


async def test_the_lock_outlives_its_timeout_while_the_run_lives(redis_client: Redis) -> None:
    async with cleanup_lock(redis_client, seconds=1, renew_every=0.2):
        await asyncio.sleep(2.5)  # a long step: two and a half timeouts
        assert 0 < await redis_client.pttl(keys.CLEANUP_LOCK) <= 1000
        with pytest.raises(CleanupBusyError):
            async with cleanup_lock(redis_client):
                pass
    assert not await redis_client.exists(keys.CLEANUP_LOCK)


async def test_a_lapsed_lock_taken_by_another_run_is_left_to_it(redis_client: Redis) -> None:
    # A run stalled past the timeout (not renewed in time) must not release the next run's lock.
    async with cleanup_lock(redis_client, seconds=0.3, renew_every=60):
        await asyncio.sleep(0.5)
        assert await redis_client.set(keys.CLEANUP_LOCK, "next-run", nx=True, ex=60)
    assert await redis_client.get(keys.CLEANUP_LOCK) == "next-run"


async def test_images_indexed_during_a_run_keep_their_links(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    original, half, low, crop = planted_variants(tmp_path / "in", 60)
    late = tmp_path / "late"
    late.mkdir()
    crop.rename(late / crop.name)
    await ingest(pipeline, tmp_path / "in", ["cat"])
    # The run scans the index, then the hasher indexes (and links) one more variant before the swap.
    catalogue = await load_catalogue(pipeline.search, frozenset(), Progress(enabled=False))
    await ingest(pipeline, late, ["cat"])
    report = await regroup_all(pipeline.catalog, catalogue, Progress(enabled=False))
    assert report.groups == 1 and report.late_linked == 1
    members = {md5_of(p) for p in (original, half, low, late / crop.name)}
    assert await groups_now(redis_client, list(members)) == {frozenset(members)}
