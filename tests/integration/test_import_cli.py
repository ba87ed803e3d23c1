"""`paktum import` against the real hasher and Redis: hidden files are counted and named, and `--wait` reports
the rejections of this import, not of every import before it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from paktum_cli.main import _import
from tests.imagefiles import bad_images, good_images
from tests.integration.pipeline import Pipeline


async def drain_once_published(pipeline: Pipeline) -> None:
    while (await pipeline.queue.depth())[0] == 0:
        await asyncio.sleep(0.02)
    await pipeline.drain()


async def test_import_counts_hidden_files_and_its_own_rejections(
    tmp_path: Path, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "first"
    bad = bad_images(first)  # several broken files: dead letters of an earlier import
    assert await _import(pipeline.settings, first, "", None, wait=False) == 0
    await pipeline.drain()
    assert await pipeline.queue.redis.xlen(pipeline.settings.dead_letter_stream) == len(bad)
    capsys.readouterr()

    second = tmp_path / "second"
    good_images(second, 2)
    (second / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    good_images(second / ".thumbnails", 2)  # a tool's cache: hidden
    (second / ".hidden.jpg").write_bytes((second / "broken.jpg").read_bytes())
    code, _ = await asyncio.gather(
        _import(pipeline.settings, second, "", None, wait=True), drain_once_published(pipeline)
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "found 3 image files, published 3" in out
    assert "skipped 3 hidden image files (a name starting with '.'" in out
    assert "1 posts rejected of this import" in out, out
