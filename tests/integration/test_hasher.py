"""The hasher end to end in one process: real files in, real Redis stream, real SQLite index out."""

import hashlib
from pathlib import Path

from PIL import Image
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.contracts import Post, Rating
from paktum_common.search import parse_query
from paktum_scraper.local import ImportReport, local_posts
from tests.imagefiles import bad_images, good_images
from tests.integration.pipeline import Pipeline


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_imported_folder_is_stored_thumbnailed_and_searchable(tmp_path: Path, pipeline: Pipeline) -> None:
    folder = tmp_path / "in"
    good = good_images(folder, 8)
    (folder / "picture-000.txt").write_text("cat_ears solo")
    report = ImportReport()
    await pipeline.queue.publish_posts(local_posts(folder, ["holiday"], Rating.safe, report))
    await pipeline.drain()

    page = await pipeline.search.search(parse_query("holiday"), 50)
    assert page.total == len(good) == report.found
    tagged = await pipeline.search.search(parse_query("cat_ears,solo"), 50)
    assert [hit.SourceID for hit in tagged.hits] == ["picture-000.jpg"]
    for hit in page.hits:
        stored = pipeline.store.image_path(hit.Filename)
        assert stored.read_bytes() == (folder / hit.SourceID).read_bytes()
        with Image.open(stored) as image:
            assert image.size == (hit.Width, hit.Height) == (640, 480)
        with Image.open(pipeline.store.thumbnail_path(hit.ID)) as thumb:
            assert max(thumb.size) == pipeline.settings.thumbnail_size
        assert hit.Rating is Rating.safe and hit.Size == stored.stat().st_size


async def test_bad_files_are_dead_lettered_with_reasons_and_never_block_the_rest(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    folder = tmp_path / "in"
    good_images(folder, 4)
    bad = bad_images(folder)
    before = _metric("paktum_hasher_images_total", outcome="failed")
    await pipeline.queue.publish_posts(local_posts(folder, [], None, ImportReport()))
    await pipeline.drain()

    assert (await pipeline.search.search(parse_query(""), 50)).total == 4
    dead = await redis_client.xrange(pipeline.settings.dead_letter_stream)
    reasons = {Post.from_stream(fields).source_id: fields["reason"] for _, fields in dead}
    assert set(reasons) == {path.name for path in bad.values()}
    assert "not an image" in reasons["notes.jpg"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "PAKTUM_MAX_IMAGE_PIXELS" in reasons["bomb.png"]
    assert _metric("paktum_hasher_images_total", outcome="failed") - before == len(bad)
    assert not any(p.name.startswith(("notes", "truncated")) for p in pipeline.store.images_dir.iterdir())


async def test_an_image_imported_twice_is_indexed_once_with_both_tag_sets(tmp_path: Path, pipeline: Pipeline) -> None:
    folder = tmp_path / "in"
    [path] = good_images(folder, 1)
    copy = tmp_path / "elsewhere" / "copy.jpg"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    await pipeline.queue.publish_posts(local_posts(folder, ["first"], None, ImportReport()))
    await pipeline.queue.publish_posts(local_posts(copy.parent, ["second"], None, ImportReport()))
    await pipeline.drain()
    await pipeline.queue.publish_posts(local_posts(folder, ["third"], None, ImportReport()))
    await pipeline.drain()

    page = await pipeline.search.search(parse_query(""), 50)
    assert page.total == 1
    assert set(page.hits[0].Tags) == {"first", "second", "third"}
    assert len(list(pipeline.store.images_dir.iterdir())) == 1


async def test_a_scraped_post_may_not_read_local_files(pipeline: Pipeline, redis_client: Redis) -> None:
    await pipeline.queue.publish_posts([Post(source="gelbooru", file_url="file:///etc/passwd")])
    await pipeline.drain()
    [(_, fields)] = await redis_client.xrange(pipeline.settings.dead_letter_stream)
    assert "file URL from source 'gelbooru' refused" in fields["reason"]


async def test_a_missing_file_is_rejected_with_its_url(tmp_path: Path, pipeline: Pipeline, redis_client: Redis) -> None:
    missing = tmp_path / "gone.jpg"
    await pipeline.queue.publish_posts([Post(source="local", file_url=missing.as_uri())])
    await pipeline.drain()
    [(_, fields)] = await redis_client.xrange(pipeline.settings.dead_letter_stream)
    assert fields["reason"].startswith(f"local file refused: {missing.as_uri()} is not a readable file")


async def test_a_purged_file_published_again_is_refused(
    tmp_path: Path, pipeline: Pipeline, redis_client: Redis
) -> None:
    [path] = good_images(tmp_path / "in", 1)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    await redis_client.sadd(keys.BANNED_MD5, md5)
    await pipeline.queue.publish_posts(local_posts(tmp_path / "in", ["again"], None, ImportReport()))
    await pipeline.drain()
    [(_, fields)] = await redis_client.xrange(pipeline.settings.dead_letter_stream)
    assert fields["reason"] == f"md5 {md5} was removed for good and is banned"
    assert await pipeline.search.count() == 0
    assert list(pipeline.store.images_dir.iterdir()) == []
