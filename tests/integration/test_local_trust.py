"""Forged local posts on the stream: a file:// URL is read only under a folder the operator allowed, only as a
regular file, and every refusal reads the same whether the path exists or not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis

from paktum_common.contracts import Post
from paktum_common.settings import Settings
from paktum_scraper.local import ImportReport, local_posts
from tests.imagefiles import good_images
from tests.integration.pipeline import open_pipeline

REFUSED = "is not a readable file in a folder allowed for local posts"


async def _reasons(settings: Settings, redis: Redis, posts: list[Post]) -> dict[str, str]:
    async with open_pipeline(settings, redis) as pipeline:
        await pipeline.queue.publish_posts(posts)
        await pipeline.drain()
    dead = await redis.xrange(settings.dead_letter_stream)
    return {Post.from_stream(fields).file_url: fields["reason"] for _, fields in dead}


def _local(path: Path | str) -> Post:
    url = path.as_uri() if isinstance(path, Path) else path
    return Post(source="local", source_id=str(path), file_url=url)


async def test_outside_the_allowed_folders_nothing_is_read_and_existence_is_not_told(
    tmp_path: Path, settings: Settings, redis_client: Redis
) -> None:
    allowed = tmp_path / "allowed"
    [image] = good_images(allowed, 1)
    elsewhere = tmp_path / "elsewhere"
    [outside] = good_images(elsewhere, 1)
    (allowed / "escape.jpg").symlink_to(outside)
    only_allowed = settings.model_copy(update={"local_roots": [allowed]})
    forged = [
        _local(Path("/etc/passwd")),
        _local(Path("/etc/no-such-file")),
        _local(outside),
        _local(elsewhere / "missing.jpg"),
        _local(allowed / "escape.jpg"),  # a symlink inside, pointing outside
        _local(f"file://{allowed}/../elsewhere/{outside.name}"),  # `..` out of the folder
        _local(allowed / "missing.jpg"),
        _local(f"file://otherhost{image}"),
    ]
    reasons = await _reasons(only_allowed, redis_client, forged)
    assert len(reasons) == len(forged)
    # One message for all, the URL aside: a post learns nothing about what exists on the disk.
    assert {reason.replace(url, "<url>") for url, reason in reasons.items()} == {
        f"local file refused: <url> {REFUSED} (the folder `paktum import` was given, or PAKTUM_LOCAL_ROOTS)"
    }


@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "proc", "empty"])
async def test_only_regular_files_are_read_and_a_fifo_never_hangs_the_hasher(
    tmp_path: Path, settings: Settings, redis_client: Redis, kind: str
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    target = folder / f"{kind}.jpg"
    if kind == "fifo":
        os.mkfifo(target)  # no writer ever: reading it blocking would wait forever
    elif kind == "directory":
        target.mkdir()
    elif kind == "empty":
        target.write_bytes(b"")
    elif kind == "device":
        (tmp_path / "dev").mkdir()
        target = tmp_path / "dev" / "zero.jpg"
        target.symlink_to("/dev/zero")
    else:
        (tmp_path / "proc").mkdir()
        target = tmp_path / "proc" / "environ.jpg"
        target.symlink_to(f"/proc/{os.getpid()}/environ")
    # /dev and /proc themselves allowed: only the kind of file stands between the post and its bytes.
    roots = [folder, Path("/dev"), Path("/proc")]
    reasons = await _reasons(settings.model_copy(update={"local_roots": roots}), redis_client, [_local(target)])
    assert list(reasons.values()) == [
        f"local file refused: {target.as_uri()} {REFUSED} (the folder `paktum import` was given, or PAKTUM_LOCAL_ROOTS)"
    ]


async def test_the_source_name_grants_nothing_and_a_scraped_file_url_is_refused(
    tmp_path: Path, settings: Settings, redis_client: Redis
) -> None:
    [image] = good_images(tmp_path / "in", 1)
    reasons = await _reasons(settings, redis_client, [Post(source="danbooru", source_id="1", file_url=image.as_uri())])
    assert reasons == {image.as_uri(): f"file URL from source 'danbooru' refused: {image.as_uri()}"}


async def test_paktum_import_allows_the_folder_it_imports_and_nothing_else(
    tmp_path: Path, settings: Settings, redis_client: Redis
) -> None:
    imported, other = tmp_path / "imported", tmp_path / "other"
    good_images(imported, 3)
    good_images(other, 1)
    settings.data_dir.mkdir(parents=True)
    hashers = settings.model_copy(update={"local_roots": []})  # as under `paktum up`: no setting, the data dir
    done = subprocess.run(
        [sys.executable, "-m", "paktum_cli.main", "--data-dir", str(settings.data_dir), "import", str(imported)],
        env=dict(os.environ, PAKTUM_REDIS_URL=str(settings.redis_url)), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"may read files under {imported.resolve()}" in done.stdout
    assert settings.local_roots_file.stat().st_mode & 0o077 == 0
    # A post for a folder never imported, published by anything that reaches Redis:
    async with open_pipeline(hashers, redis_client) as pipeline:
        await pipeline.queue.publish_posts(local_posts(other, [], None, ImportReport()))
        await pipeline.drain()
        assert await pipeline.search.count() == 3
    [(_, fields)] = await redis_client.xrange(settings.dead_letter_stream)
    assert REFUSED in fields["reason"]


async def test_a_roots_file_others_may_write_is_ignored(
    tmp_path: Path, settings: Settings, redis_client: Redis
) -> None:
    [image] = good_images(tmp_path / "in", 1)
    settings.data_dir.mkdir(parents=True)
    settings.local_roots_file.write_text(f"{image.parent}\n")
    settings.local_roots_file.chmod(0o666)
    reasons = await _reasons(settings.model_copy(update={"local_roots": []}), redis_client, [_local(image)])
    assert REFUSED in reasons[image.as_uri()]
