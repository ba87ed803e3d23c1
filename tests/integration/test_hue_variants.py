"""Hue marks on real pictures (tests/fixtures/real/hues): two pairs of distinct pictures that differ in colour alone
(a lime's wedge and a lemon's; Hungary's flag and Honduras's), near by pHash, signatures and symmetric hashes, are
neither related after a cleanup nor found by search by image, while a smaller copy and a mirrored one of them
are both; a grey copy of the lime, which links to both wedges, is grouped with the lime alone (real Redis,
SQLite, hasher, cleanup and api)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps
from redis.asyncio import Redis

from paktum_cleanup.run import run_cleanup
from paktum_common.groups import related_many
from paktum_common.hues import HUES_LENGTH, hues_agree
from paktum_common.phash import NO_MATCH, hues_of, match
from paktum_common.settings import Settings
from paktum_hasher.decode import decode_image
from paktum_hasher.rehash import Rehasher
from tests.imagefiles import encode, flattened
from tests.integration.apiserver import serve
from tests.integration.pipeline import Pipeline

FIXTURES = Path(__file__).parents[1] / "fixtures" / "real" / "hues"
NAMES = ("lime_wedge_ganson.png", "lemon_wedge_ganson.png", "hungary.png", "honduras.png")


def seen(name: str) -> Image.Image:
    return flattened(Image.open(FIXTURES / name).convert("RGBA"), (255, 255, 255))


def files() -> dict[str, bytes]:
    made = {
        "lime-half.jpg": encode(seen(NAMES[0]).reduce(2), "JPEG", quality=90),
        "honduras-mirror.jpg": encode(ImageOps.mirror(seen(NAMES[3])), "JPEG", quality=90),
        "lime-grey.jpg": encode(seen(NAMES[0]).convert("L"), "JPEG", quality=90),
    }
    return {**{name: (FIXTURES / name).read_bytes() for name in NAMES}, **made}


def test_only_the_hues_tell_them_apart() -> None:
    hashed = {name: decode_image(data, 120_000_000, 480) for name, data in files().items()}

    def linked(a: str, b: str, hues: bool = True) -> bool:
        x, y = hashed[a], hashed[b]
        marks = (x.signature, y.signature) if hues else (x.signature[:63], y.signature[:63])
        return match(x.phash, x.alternates, y.phash, y.alternates, x.symmetry, y.symmetry, 10, marks)[0] < NO_MATCH

    for a, b in (("lime_wedge_ganson.png", "lemon_wedge_ganson.png"), ("hungary.png", "honduras.png")):
        assert linked(a, b, hues=False) and not linked(a, b)  # the same to everything but the hues
        assert not hues_agree(hues_of(hashed[a].signature), hues_of(hashed[b].signature))
    assert linked("lime_wedge_ganson.png", "lime-half.jpg") and linked("honduras.png", "honduras-mirror.jpg")
    # A grey copy has no hue to go by: it links to both wedges, and would put them in one group.
    assert linked("lime-grey.jpg", "lime_wedge_ganson.png") and linked("lime-grey.jpg", "lemon_wedge_ganson.png")


async def test_pictures_of_other_colours_are_not_related_nor_found_and_their_copies_are(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis, settings: Settings
) -> None:
    ids = await pipeline.index_files(tmp_path / "in", files(), ["clipart"])
    lime, lemon, hungary, honduras = (ids[name] for name in NAMES)
    smaller, mirrored, grey = ids["lime-half.jpg"], ids["honduras-mirror.jpg"], ids["lime-grey.jpg"]
    # As indexed, before any cleanup: the hasher's linking keeps the colours apart too, the grey copy included.
    linked = await related_many(redis_client, list(ids.values()))
    assert lemon not in {r for r, _ in linked[lime]} and hungary not in {r for r, _ in linked[honduras]}
    assert [r for r, _ in linked[honduras]] == [mirrored] and smaller in {r for r, _ in linked[lime]}

    summary = await run_cleanup(pipeline.settings)

    assert summary.ok, summary.lines()
    related = await related_many(redis_client, list(ids.values()))
    # The grey copy goes with the wedge it is nearest (paktum_cleanup.bridges), and does not bridge the two.
    assert sorted(r for r, _ in related[lime]) == sorted([smaller, grey])
    assert sorted(r for r, _ in related[grey]) == sorted([lime, smaller])
    assert [r for r, _ in related[honduras]] == [mirrored] and [r for r, _ in related[mirrored]] == [honduras]
    assert related[lemon] == [] and related[hungary] == []
    with serve(settings) as api:
        # Search by image measures each pair alone: the grey copy is as near the lemon's wedge as it is.
        for name, found in (("lemon_wedge_ganson.png", [lemon, grey]), ("hungary.png", [hungary])):
            body = api.post("/api/similar", files={"file": ("q.png", files()[name], "image/png")}).json()
            assert body["error"] == "" and [r["ID"] for r in body["results"]] == found, name
        body = api.post("/api/similar", files={"file": ("q.jpg", files()["lime-half.jpg"], "image/jpeg")}).json()
        found = [r["ID"] for r in body["results"]]
        assert found[0] == smaller and sorted(found[1:]) == sorted([lime, grey]) and lemon not in found
        graphql = f'{{ similarImages(ID: "{honduras}") {{ ID Transform }} }}'
        answer = api.post("/query", json={"query": graphql}).json()["data"]["similarImages"]
        assert answer == [{"ID": mirrored, "Transform": "mirror"}]


async def test_images_hashed_before_hue_marks_link_as_before_until_a_rehash_gives_them_one(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    names = ("lime_wedge_ganson.png", "lemon_wedge_ganson.png")
    ids = await pipeline.index_files(tmp_path / "in", {name: files()[name] for name in names}, ["fruit"])
    lime, lemon = ids[names[0]], ids[names[1]]
    documents = await pipeline.search.get_documents([lime, lemon])
    # What the hasher before hue marks stored: the signature's coefficients alone.
    older = [doc.model_copy(update={"PHashSignature": doc.PHashSignature[:126]}) for doc in documents.values()]
    await pipeline.search.add_documents(older)

    assert (await run_cleanup(pipeline.settings)).ok
    assert [r for r, _ in (await related_many(redis_client, [lime]))[lime]] == [lemon]  # no hue to tell them by

    summary = await Rehasher(pipeline.settings, redis_client, pipeline.catalog, pipeline.worker.ingestor.pool).run()
    assert (summary.changed, summary.unchanged) == (2, 0)
    marked = await pipeline.search.get_documents([lime, lemon])
    assert all(len(doc.PHashSignature) == 2 * (63 + HUES_LENGTH) for doc in marked.values())
    assert (await run_cleanup(pipeline.settings)).ok
    assert (await related_many(redis_client, [lime, lemon])) == {lime: [], lemon: []}
