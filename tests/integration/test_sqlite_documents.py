"""The embedded index's documents read by ID, kept parsed in memory: never older than the last committed change."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import pytest

from paktum_common.search import documents, sqlite
from paktum_common.search.documents import DocumentMemory
from paktum_common.search.sqlite import SqliteSearch
from tests.integration.test_search_contract import doc


@asynccontextmanager
async def writer_and_reader(
    path: Path, kept: int = sqlite.DOCUMENTS_KEPT
) -> AsyncIterator[tuple[SqliteSearch, SqliteSearch]]:
    """Two backends on one file, as a hasher and an api process are: one writes, the other reads."""
    writer, reader = SqliteSearch(path), SqliteSearch(path, documents_kept=kept)
    try:
        yield writer, reader
    finally:
        await writer.close()
        await reader.close()


def _retag_elsewhere(path: str, n: int, tags: str) -> None:
    async def write() -> None:
        search = SqliteSearch(path)
        await search.add_documents([doc(n, tags)])
        await search.close()

    asyncio.run(write())


async def test_a_document_read_again_is_the_one_kept_until_a_change_names_it(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    async with writer_and_reader(path) as (writer, reader):
        await writer.add_documents([doc(n, "old") for n in range(3)])
        ids = [doc(n, "x").ID for n in range(3)]
        first = await reader.get_documents(ids)
        again = await reader.get_documents(ids)
        assert all(again[i] is first[i] for i in ids)  # from memory: neither read nor parsed again
        await writer.add_documents([doc(1, "new")])
        after = await reader.get_documents(ids)
        assert after[ids[1]].Tags == ["new"]
        assert after[ids[0]] is first[ids[0]] and after[ids[2]] is first[ids[2]]  # the others stay kept


async def test_an_edit_a_delete_and_a_new_image_from_another_process_show_at_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    async with writer_and_reader(path) as (writer, reader):
        await writer.add_documents([doc(n, "old") for n in range(4)])
        ids = [doc(n, "x").ID for n in range(5)]
        assert set(await reader.get_documents(ids)) == set(ids[:4])  # number 4 is not indexed yet
        process = multiprocessing.get_context("spawn").Process(target=_retag_elsewhere, args=(str(path), 0, "edited"))
        process.start()
        process.join(60)
        assert process.exitcode == 0
        await writer.delete_documents([ids[2]])
        await writer.add_documents([doc(4, "fresh")])
        found = await reader.get_documents(ids)
        assert set(found) == {ids[0], ids[1], ids[3], ids[4]}
        assert (found[ids[0]].Tags, found[ids[4]].Tags) == (["edited"], ["fresh"])
        assert await reader.get_document(ids[2]) is None


async def test_its_own_edits_show_at_once(tmp_path: Path) -> None:
    search = SqliteSearch(tmp_path / "search.sqlite3")
    try:
        await search.add_documents([doc(1, "before")])
        assert (await search.get_document(doc(1, "x").ID)).Tags == ["before"]  # type: ignore[union-attr]
        await search.add_documents([doc(1, "after")])
        assert (await search.get_document(doc(1, "x").ID)).Tags == ["after"]  # type: ignore[union-attr]
    finally:
        await search.close()


@pytest.mark.parametrize("limit", ["follow", "kept changes"])
async def test_a_reader_far_behind_drops_what_it_kept_and_reads_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str
) -> None:
    if limit == "follow":
        monkeypatch.setattr(documents, "FOLLOW_MAX", 2)  # more changes than this: start over
    else:
        monkeypatch.setattr(sqlite, "KEEP_CHANGES", 2)  # the feed forgets what the reader did not follow
    path = tmp_path / "shared.sqlite3"
    async with writer_and_reader(path) as (writer, reader):
        await writer.add_documents([doc(n, "old") for n in range(6)])
        ids = [doc(n, "x").ID for n in range(6)]
        await reader.get_documents(ids)
        for n in range(6):
            await writer.add_documents([doc(n, f"new_{n}")])
        found = await reader.get_documents(ids)
        assert [found[i].Tags for i in ids] == [[f"new_{n}"] for n in range(6)]


@pytest.mark.parametrize("kept", [0, 2])
async def test_a_small_memory_or_none_answers_the_same(tmp_path: Path, kept: int) -> None:
    path = tmp_path / "shared.sqlite3"
    async with writer_and_reader(path, kept) as (writer, reader):
        await writer.add_documents([doc(n, "old") for n in range(5)])
        ids = [doc(n, "x").ID for n in range(5)]
        for _ in range(2):
            assert set(await reader.get_documents(ids)) == set(ids)
        await writer.add_documents([doc(4, "new")])
        assert (await reader.get_documents(ids))[ids[4]].Tags == ["new"]
        assert len(reader._documents) <= kept


def test_a_document_read_before_a_change_already_followed_is_not_kept(tmp_path: Path) -> None:
    """A thread that read in an older snapshot than the memory has followed may hold the replaced version."""
    path = tmp_path / "feed.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        memory = DocumentMemory(10)
        memory.follow(conn, 5)  # started at change 5 (nothing kept: nothing to read)
        memory.store([(1, doc(1, "stale"))], snapshot=4)
        memory.store([(2, doc(2, "current"))], snapshot=5)
        found, missing = memory.lookup([doc(1, "x").ID, doc(2, "x").ID])
        assert missing == [doc(1, "x").ID] and list(found) == [doc(2, "x").ID]
