"""Symmetric pictures end to end: imported as a user would, linked at ingest, regrouped by cleanup, shown as
related and found by search by image, all by their symmetric hashes.

Crosses of different stroke widths are distinct pictures whose plain pHashes are 4 to 6 bits apart (the pHash rule
links them); a real star (tests/fixtures/real/symmetric) turned by 90 degrees and re-saved as JPEG is more than 10
bits from the original by pHash (the pHash rule misses it) and within 4 by symmetric hash. Two distinct stars of
many points (tests/fixtures/real/radial) are radial: alike at 32x32 in every hash and with no number of points read,
so linked to nothing; a 17-point star, whose number of points is read, finds its turned copy by it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image, ImageDraw
from redis.asyncio import Redis

from paktum_cleanup.run import run_cleanup
from paktum_common import keys
from paktum_common.groups import related_many
from paktum_common.phash import match
from paktum_common.settings import Settings
from paktum_hasher.decode import decode_image
from paktum_scraper.local import ImportReport, local_posts
from tests.imagefiles import encode, flattened
from tests.integration.apiserver import serve
from tests.integration.pipeline import Pipeline

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
STAR = REAL / "symmetric" / "star_13pt05step.png"
# Two distinct stars of 44 and 50 points whose symmetric hashes, as symmetric_hash makes them, are equal.
RADIAL = [REAL / "radial" / "star_44pt03step.png", REAL / "radial" / "star_50pt03step.png"]
POINTED = REAL / "radial" / "star_17pt03step.png"


def cross(width: int, size: int = 200) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    middle = size // 2
    draw.rectangle((middle - width, 20, middle + width, size - 20), fill="black")
    draw.rectangle((20, middle - width, size - 20, middle + width), fill="black")
    return image


def on_white(path: Path) -> Image.Image:
    return flattened(Image.open(path).convert("RGBA"), (255, 255, 255))


def files() -> dict[str, bytes]:
    return {
        "cross5.png": encode(cross(5), "PNG"),
        "cross10.png": encode(cross(10), "PNG"),
        "cross20.png": encode(cross(20), "PNG"),
        "star.png": STAR.read_bytes(),
        "star-turned.jpg": encode(on_white(STAR).transpose(Image.Transpose.ROTATE_90), "JPEG", quality=80),
        **{f"ring{i}.png": path.read_bytes() for i, path in enumerate(RADIAL)},
        "pointed.png": POINTED.read_bytes(),
        "pointed-turned.jpg": encode(on_white(POINTED).transpose(Image.Transpose.ROTATE_90), "JPEG", quality=80),
    }


def md5s() -> dict[str, str]:
    return {name.partition(".")[0]: hashlib.md5(data).hexdigest() for name, data in files().items()}


def decoded(data: bytes) -> object:
    return decode_image(data, 50_000_000, 256, "imagehash")


def test_the_pictures_show_what_the_phash_rule_gets_wrong() -> None:
    made = {name: decoded(data) for name, data in files().items()}
    assert all(d.symmetric for name, d in made.items() if name != "star-turned.jpg")  # type: ignore[attr-defined]

    def by_phash(a: str, b: str) -> int:
        x, y = made[a], made[b]
        return match(x.phash, x.alternates, y.phash, y.alternates)[0]  # type: ignore[attr-defined]

    assert by_phash("cross5.png", "cross10.png") <= 10 and by_phash("cross10.png", "cross20.png") <= 10
    assert by_phash("star.png", "star-turned.jpg") > 10


async def import_files(pipeline: Pipeline, folder: Path, names: list[str], tags: list[str]) -> None:
    """Write these of files() to `folder` and import them as `paktum import` does, until the hashers are done."""
    folder.mkdir()
    made = files()
    for name in names:
        (folder / name).write_bytes(made[name])
    await pipeline.queue.publish_posts(local_posts(folder, tags, None, ImportReport()))
    await pipeline.drain()


async def related_sets(redis: Redis, ids: list[str]) -> dict[str, set[str]]:
    related = await related_many(redis, ids)
    return {i: {other for other, _ in related[i]} for i in ids}


async def test_symmetric_pictures_link_by_symmetric_hashes_at_ingest_and_after_cleanup(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis, settings: Settings
) -> None:
    await import_files(pipeline, tmp_path / "in", list(files()), ["shape"])
    ids = md5s()
    every = list(ids.values())
    expected = {i: set() for i in every}
    expected[ids["star"]] = {ids["star-turned"]}
    expected[ids["star-turned"]] = {ids["star"]}
    expected[ids["pointed"]] = {ids["pointed-turned"]}
    expected[ids["pointed-turned"]] = {ids["pointed"]}
    assert await related_sets(redis_client, every) == expected  # linked as they were indexed

    summary = await run_cleanup(pipeline.settings)
    assert summary.ok, summary.lines()
    assert summary.groups is not None and summary.groups.groups == 2
    assert await related_sets(redis_client, every) == expected  # the full regroup agrees

    with serve(settings) as api:
        related = api.get(f"/api/image/{ids['star']}/related").json()
        assert related["results"] == [ids["star-turned"]] and related["distances"][0] <= 4
        # Search by image: a re-saved cross finds its own picture alone, not the crosses its pHash is near.
        query = encode(cross(10), "JPEG", quality=85)
        body = api.post("/api/similar", files={"file": ("c.jpg", query, "image/jpeg")}).json()
        assert body["error"] == "" and [r["ID"] for r in body["results"]] == [ids["cross10"]]
        # A turned star finds the star, and the other way round (by ID, through GraphQL).
        turned = encode(on_white(STAR).transpose(Image.Transpose.ROTATE_270), "JPEG", quality=85)
        body = api.post("/api/similar", files={"file": ("s.jpg", turned, "image/jpeg")}).json()
        assert {r["ID"] for r in body["results"]} == {ids["star"], ids["star-turned"]}
        graphql = f'{{ similarImages(ID: "{ids["star"]}") {{ ID Distance }} }}'
        found = api.post("/query", json={"query": graphql}).json()["data"]["similarImages"]
        assert [f["ID"] for f in found] == [ids["star-turned"]] and found[0]["Distance"] <= 4


async def test_a_purged_symmetric_picture_refuses_its_resaves_and_not_other_pictures(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    ids = md5s()
    await import_files(pipeline, tmp_path / "banned", ["star.png", "cross5.png"], ["gore"])
    summary = await run_cleanup(pipeline.settings.model_copy(update={"banned_tags": ["gore"]}))
    assert summary.ok and summary.purge is not None and summary.purge.banned_tag == 2, summary.lines()

    await import_files(pipeline, tmp_path / "later", ["star-turned.jpg", "cross10.png"], ["shape"])
    # The turned, re-saved star is over 10 bits from the purged one by pHash and within 4 by symmetric hash:
    # refused. The wider cross is 4 bits from the purged narrow one by pHash, another picture by symmetric hash: kept.
    assert await pipeline.search.get_document(ids["star-turned"]) is None
    assert await redis_client.sismember(keys.BANNED_MD5, ids["star-turned"])
    assert await pipeline.search.get_document(ids["cross10"]) is not None
    # The cleanup's own pass over re-uploads agrees: nothing more to purge.
    again = await run_cleanup(pipeline.settings.model_copy(update={"banned_tags": ["gore"]}))
    assert again.ok and again.purge is not None and again.purge.near_purged == 0, again.lines()
