"""Signatures on real pictures (tests/fixtures/real/signature): two distinct pictures 10 bits apart by chance are
neither related after a cleanup nor found by search by image, and a 10% crop 10 bits from its picture is both
(real Redis, SQLite, hasher, cleanup and api)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw
from redis.asyncio import Redis

from paktum_cleanup.run import run_cleanup
from paktum_common.groups import related_many
from paktum_common.phash import SIGNATURE_KEEP, hamming, match, signature_cosine, signature_neighbours
from paktum_common.settings import Settings
from paktum_hasher.decode import decode_image
from tests.imagefiles import encode, flattened
from tests.integration.apiserver import serve
from tests.integration.pipeline import Pipeline

FIXTURES = Path(__file__).parents[1] / "fixtures" / "real" / "signature"


def cropped_10(name: str) -> bytes:
    """The picture as seen (on white), 5% of each side cut from each end, as a JPEG (bench/variants.py's crop10)."""
    seen = flattened(Image.open(FIXTURES / name).convert("RGBA"), (255, 255, 255))
    dx, dy = round(seen.width * 0.05), round(seen.height * 0.05)
    return encode(seen.crop((dx, dy, seen.width - dx, seen.height - dy)), "JPEG", quality=90)


def files() -> dict[str, bytes]:
    names = ("shredder.png", "webpres.png", "wire_globe_01.png")
    return {**{name: (FIXTURES / name).read_bytes() for name in names}, "shredder-crop.jpg": cropped_10(names[0])}


def test_the_pairs_are_what_the_signatures_decide() -> None:
    hashed = {name: decode_image(data, 120_000_000, 480) for name, data in files().items()}

    def apart(a: str, b: str) -> tuple[int, float]:
        x, y = hashed[a], hashed[b]
        cosine = signature_cosine(x.signature, y.signature)
        assert cosine is not None
        return hamming(x.phash, y.phash), cosine

    bits, cosine = apart("shredder.png", "shredder-crop.jpg")
    assert bits == 10 and cosine >= SIGNATURE_KEEP + 0.05  # the crop points the same way
    bits, cosine = apart("webpres.png", "wire_globe_01.png")
    assert bits == 10 and cosine < SIGNATURE_KEEP  # as near by chance
    assert not any(h.symmetric for h in hashed.values())


async def test_a_chance_pair_within_the_distance_is_refused_and_a_crop_as_near_is_kept(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis, settings: Settings
) -> None:
    ids = await pipeline.index_files(tmp_path / "in", files(), ["clipart"])
    shredder, crop = ids["shredder.png"], ids["shredder-crop.jpg"]
    web, globe = ids["webpres.png"], ids["wire_globe_01.png"]
    linked = await related_many(redis_client, list(ids.values()))  # as indexed: the hasher's linking, same rule
    assert linked[web] == [] and linked[globe] == [] and linked[shredder] == [(crop, 10)]

    summary = await run_cleanup(pipeline.settings)

    assert summary.ok, summary.lines()
    related = await related_many(redis_client, list(ids.values()))
    assert related[web] == [] and related[globe] == []
    assert related[shredder] == [(crop, 10)] and related[crop] == [(shredder, 10)]
    with serve(settings) as api:
        body = api.post("/api/similar", files={"file": ("w.png", files()["webpres.png"], "image/png")}).json()
        assert body["error"] == "" and [r["ID"] for r in body["results"]] == [web]
        body = api.post("/api/similar", files={"file": ("c.jpg", files()["shredder-crop.jpg"], "image/jpeg")}).json()
        assert [r["ID"] for r in body["results"]] == [crop, shredder] and body["distances"] == [0, 10]
        graphql = f'{{ similarImages(ID: "{globe}") {{ ID }} }}'
        assert api.post("/query", json={"query": graphql}).json()["data"]["similarImages"] == []


WALLPAPERS = Path(__file__).parents[1] / "fixtures" / "real" / "jpeg"
SMOOTH = ("plasma-ColdRipple-screenshot.jpg", "plasma-DarkestHour-screenshot.jpg", "plasma-summer_1am-screenshot.jpg")


def watermarked(name: str) -> bytes:
    """A site's faint band with its name in the lower right corner (bench/variants.py's watermark), as a JPEG."""
    picture = Image.open(WALLPAPERS / name).convert("RGBA")
    layer = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    w, h = picture.size
    box = (int(w * 0.77), int(h * 0.93), int(w * 0.98), int(h * 0.98))
    draw = ImageDraw.Draw(layer)
    draw.rectangle(box, fill=(255, 255, 255, 90))
    draw.text((box[0] + 4, box[1] + 2), "paktum.example", fill=(0, 0, 0, 170))
    return encode(Image.alpha_composite(picture, layer).convert("RGB"), "JPEG", quality=90)


def wallpapers() -> dict[str, bytes]:
    return {
        **{name: (WALLPAPERS / name).read_bytes() for name in SMOOTH},
        **{f"marked-{name}": watermarked(name) for name in SMOOTH},
    }


def test_a_watermark_on_a_smooth_wallpaper_flips_its_bits_and_leaves_its_signature() -> None:
    hashed = {name: decode_image(data, 120_000_000, 480) for name, data in wallpapers().items()}
    for name in SMOOTH:
        own, marked = hashed[name], hashed[f"marked-{name}"]
        assert hamming(own.phash, marked.phash) > 10  # beyond the distance by pHash
        assert signature_neighbours(own.signature, marked.signature)
        assert match(own.phash, own.alternates, marked.phash, marked.alternates, own.symmetry, marked.symmetry, 10,
                     (own.signature, marked.signature))[0] == hamming(own.phash, marked.phash)  # fmt: skip
    for a, b in [(a, b) for a in SMOOTH for b in SMOOTH if a < b]:
        assert not signature_neighbours(hashed[a].signature, hashed[b].signature)


async def test_the_regroup_relates_a_smooth_wallpaper_to_its_watermarked_copy(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    ids = await pipeline.index_files(tmp_path / "in", wallpapers(), ["wallpaper"])

    summary = await run_cleanup(pipeline.settings)

    assert summary.ok, summary.lines()
    related = await related_many(redis_client, list(ids.values()))
    for name in SMOOTH:
        assert [other for other, _ in related[ids[name]]] == [ids[f"marked-{name}"]], name


async def test_the_hasher_links_and_search_by_image_finds_a_watermarked_wallpaper_by_its_signature(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis, settings: Settings
) -> None:
    ids = await pipeline.index_files(tmp_path / "in", wallpapers(), ["wallpaper"])

    linked = await related_many(redis_client, list(ids.values()))  # before any cleanup
    for name in SMOOTH:
        assert [other for other, _ in linked[ids[name]]] == [ids[f"marked-{name}"]], name
    with serve(settings) as api:
        for name in SMOOTH:
            body = api.post("/api/similar", files={"file": ("m.jpg", watermarked(name), "image/jpeg")}).json()
            assert body["error"] == "" and [r["ID"] for r in body["results"]] == [ids[f"marked-{name}"], ids[name]]
            assert body["distances"][0] == 0 and body["distances"][1] > 10  # its pHash distance, beyond the 10
