"""Rehash: images hashed by an older hasher get today's hashes from their stored files (real Redis, SQLite, files,
the hasher's decode pool), and bad files, stops and concurrent edits lose nothing."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from pathlib import Path

from PIL import Image
from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.contracts import TagEdit
from paktum_common.registry import IMAGES
from paktum_hasher.decode import decode_image
from paktum_hasher.rehash import Rehasher, RehashSummary
from tests.imagefiles import drawing, encode, flattened, picture
from tests.integration.pipeline import Pipeline

FIXTURES = Path(__file__).parents[1] / "fixtures" / "real" / "radial"
# Registered images enough that HSCAN takes several steps (a small hash comes back whole, whatever COUNT says).
UNINDEXED = 1500


def files() -> dict[str, bytes]:
    return {
        "photo.jpg": encode(picture(80), "JPEG", quality=90),
        "other.jpg": encode(picture(81), "JPEG", quality=90),
        "drawing.png": encode(drawing(), "PNG"),
        "star.png": (FIXTURES / "star_41pt07step.png").read_bytes(),
    }


def rehasher(pipeline: Pipeline, redis: Redis, batch: int = 200) -> Rehasher:
    return Rehasher(pipeline.settings, redis, pipeline.catalog, pipeline.worker.ingestor.pool, batch=batch)


async def as_hashed_by_an_old_hasher(pipeline: Pipeline, redis: Redis, md5s: list[str]) -> None:
    """What a hasher before alternates and symmetric hashes left: the plain pHash alone, in the registry and index."""
    documents = await pipeline.search.get_documents(md5s)
    await IMAGES.remove(redis, md5s)
    await IMAGES.add(redis, {md5: doc.PHash for md5, doc in documents.items()})
    old = {"PHashAlternates": (), "Symmetric": False, "PHashSymmetric": (), "PHashSignature": ""}
    await pipeline.search.add_documents([doc.model_copy(update=old) for doc in documents.values()])


async def hashes(pipeline: Pipeline, redis: Redis, md5s: list[str]) -> tuple[object, dict[str, tuple[object, ...]]]:
    """Everything stored of these images' hashes: the registry's, and the documents' hash fields."""
    registered = await IMAGES.stored(redis, md5s)
    documents = await pipeline.search.get_documents(md5s)
    fields = {
        md5: (d.PHash, d.PHashAlternates, d.Symmetric, d.PHashSymmetric, d.PHashSignature)
        for md5, d in documents.items()
    }
    return registered, fields


async def found_by(redis: Redis, data: bytes) -> set[str]:
    """The registered images a query picture matches, as ingest linking and search by image ask."""
    decoded = decode_image(data, 120_000_000, 480)
    near = await IMAGES.near_any(redis, [(decoded.phash, *decoded.alternates)], 10, [decoded.symmetry])
    return {md5 for md5, _ in near[0]}


async def test_images_hashed_by_an_old_hasher_get_todays_hashes_and_their_copies_are_found(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    ids = await pipeline.index_files(tmp_path / "in", files(), ["cat"])
    md5s = list(ids.values())
    today = await hashes(pipeline, redis_client, md5s)
    old = [ids["photo.jpg"], ids["drawing.png"], ids["star.png"]]
    await as_hashed_by_an_old_hasher(pipeline, redis_client, old)
    await pipeline.catalog.update_tags([ids["photo.jpg"]], TagEdit(add=("edited",)))
    # A JPEG of the drawing flattened on black, and the star re-encoded: copies an old hash cannot find (it has
    # no hash on the other background, and the star's pHash is noise, which is why it has symmetric hashes).
    on_black = encode(flattened(drawing(), (0, 0, 0)), "JPEG", quality=85)
    star = encode(
        flattened(Image.open(FIXTURES / "star_41pt07step.png").convert("RGBA"), (255, 255, 255)), "JPEG", quality=70
    )
    assert ids["drawing.png"] not in await found_by(redis_client, on_black)
    assert ids["star.png"] not in await found_by(redis_client, star)

    summary = await rehasher(pipeline, redis_client).run()

    assert (summary.images, summary.changed, summary.unchanged, summary.finished) == (4, 3, 1, True)
    assert await hashes(pipeline, redis_client, md5s) == today
    assert ids["drawing.png"] in await found_by(redis_client, on_black)
    assert ids["star.png"] in await found_by(redis_client, star)
    documents = await pipeline.search.get_documents(md5s)
    assert "edited" in documents[ids["photo.jpg"]].Tags and "cat" in documents[ids["photo.jpg"]].Tags
    assert await redis_client.exists(keys.REHASH_CURSOR) == 0
    again = await rehasher(pipeline, redis_client).run()
    assert (again.changed, again.unchanged) == (0, 4)  # a second run writes nothing


async def test_missing_corrupt_and_oversized_files_are_counted_and_their_images_kept(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    ids = await pipeline.index_files(tmp_path / "in", files(), ["cat"])
    md5s = list(ids.values())
    await as_hashed_by_an_old_hasher(pipeline, redis_client, md5s)
    documents = await pipeline.search.get_documents(md5s)
    path = {name: pipeline.store.image_path(documents[md5].Filename) for name, md5 in ids.items()}
    large = max(("drawing.png", "star.png"), key=lambda name: path[name].stat().st_size)
    bad = [ids["photo.jpg"], ids["other.jpg"], ids[large]]
    before = await hashes(pipeline, redis_client, bad)
    path["photo.jpg"].unlink()
    path["other.jpg"].write_bytes(path["other.jpg"].read_bytes()[:200])
    pipeline.settings.max_file_bytes = path[large].stat().st_size - 1

    summary = await rehasher(pipeline, redis_client).run()

    assert (summary.missing, summary.unreadable, summary.too_large, summary.changed) == (1, 1, 1, 1)
    assert summary.finished
    assert await hashes(pipeline, redis_client, bad) == before
    assert set(await pipeline.search.get_documents(md5s)) == set(md5s)
    assert set(await IMAGES.get(redis_client, md5s)) == set(md5s)


async def test_a_stopped_rehash_goes_on_where_it_stopped(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    ids = await pipeline.index_files(tmp_path / "in", files(), ["cat"])
    await as_hashed_by_an_old_hasher(pipeline, redis_client, list(ids.values()))
    # Enough registered images (without documents: the sweep's to repair) that HSCAN takes several steps.
    rng = random.Random(3)
    await IMAGES.add(redis_client, {f"{n:032x}": rng.getrandbits(64) for n in range(UNINDEXED)})
    first = await rehasher(pipeline, redis_client, batch=50).run(max_batches=2)
    assert not first.finished and await redis_client.get(keys.REHASH_CURSOR)

    rest = await rehasher(pipeline, redis_client, batch=50).run()

    assert rest.finished and first.images + rest.images == UNINDEXED + 4
    assert first.changed + rest.changed == 4 and first.unindexed + rest.unindexed == UNINDEXED
    restarted = await rehasher(pipeline, redis_client).run(restart=True)
    assert (restarted.images, restarted.changed, restarted.unchanged) == (UNINDEXED + 4, 0, 4)


async def test_an_image_removed_while_a_rehash_runs_is_not_brought_back(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    ids = await pipeline.index_files(tmp_path / "in", files(), ["cat"])
    photo, other = ids["photo.jpg"], ids["other.jpg"]
    hashed = decode_image(files()["photo.jpg"], 120_000_000, 480).hashes
    # Removed between the rehash's scan and its write: from the registry (a purge's first step), from the index.
    await IMAGES.remove(redis_client, [photo])
    await pipeline.search.delete_documents([other])

    assert await pipeline.catalog.replace_hashes({photo: hashed, other: hashed}) == []

    assert await IMAGES.get(redis_client, [photo]) == {}
    assert other not in await pipeline.search.get_documents([other])


async def test_paktum_rehash_rewrites_hashes_then_regroups(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    ids = await pipeline.index_files(tmp_path / "in", files(), ["cat"])
    await as_hashed_by_an_old_hasher(pipeline, redis_client, [ids["photo.jpg"], ids["star.png"]])
    settings = pipeline.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAKTUM_")}
    env.update(PAKTUM_DATA_DIR=str(settings.data_dir), PAKTUM_REDIS_URL=str(settings.redis_url))
    command = [sys.executable, "-m", "paktum_cli.main", "rehash"]

    run = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=300)

    assert run.returncode == 0, run.stderr
    assert "paktum rehash: 4 images" in run.stdout and "changed 2, unchanged 2" in run.stdout, run.stdout
    assert "; finished" in run.stdout and "paktum cleanup: " in run.stdout  # then the regroup
    documents = await pipeline.search.get_documents([ids["photo.jpg"]])
    assert documents[ids["photo.jpg"]].PHashAlternates


def test_rehash_summary_line_names_every_count() -> None:
    line = RehashSummary(images=5, changed=1, unchanged=2, missing=1, unreadable=1, seconds=0.5).line()
    assert line.startswith("5 images in 0.5 s: changed 1, unchanged 2, unindexed 0, missing 1, too large 0")
    assert "unreadable 1, videos skipped 0; stopped" in line
