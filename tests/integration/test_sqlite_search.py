"""What only the SQLite backend promises; what every backend promises is in test_search_contract.py."""

import asyncio
import json
import multiprocessing
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from paktum_common.search import Order, SearchQuery, sqlite
from paktum_common.search.sqlite import SqliteSearch
from tests.integration.test_search_contract import doc


def _writer(path: str, start: int) -> None:
    async def write() -> None:
        search = SqliteSearch(path)
        for n in range(start, start + 50):
            await search.add_documents([doc(n, "shared")])
        await search.close()

    asyncio.run(write())


async def test_several_processes_write_one_file(tmp_path: Path) -> None:
    """The hashers and the api share one file (WAL): concurrent writers lose nothing."""
    path = str(tmp_path / "shared.sqlite3")
    await SqliteSearch(path).close()  # create the schema once
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, start)) for start in (0, 1000, 2000)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    search = SqliteSearch(path)
    assert (await search.search(SearchQuery(all_tags=("shared",)), 1)).total == 150
    await search.close()


async def test_every_process_sees_each_committed_change_at_its_next_search(tmp_path: Path) -> None:
    """Two backends on one file (as the hasher and the api): the reader's bitmaps follow the writer's
    adds, re-tags and deletes, including several changes of one image between two searches."""
    path = tmp_path / "shared.sqlite3"
    writer, reader = SqliteSearch(path), SqliteSearch(path)
    try:
        await writer.add_documents([doc(n, "old") for n in range(5)])
        assert (await reader.search(SearchQuery(all_tags=("old",)), 10)).total == 5  # loads the index
        await writer.add_documents([doc(5, "old new")])
        await writer.add_documents([doc(1, "new")])  # re-tagged: out of `old`
        await writer.add_documents([doc(2, "newer")])
        await writer.add_documents([doc(2, "new")])  # changed twice since the reader's last search
        await writer.delete_documents([doc(3, "x").ID])
        await writer.add_documents([doc(4, "gone")])
        await writer.delete_documents([doc(4, "x").ID])
        old = await reader.search(SearchQuery(all_tags=("old",), order=Order.added_asc), 10)
        assert sorted(int(hit.ID, 16) for hit in old.hits) == [0, 5] and old.total == 2
        assert (await reader.search(SearchQuery(all_tags=("new",)), 10)).total == 3
        assert (await reader.search(SearchQuery(all_tags=("newer",)), 10)).total == 0
        assert (await reader.search(SearchQuery(all_tags=("gone",)), 10)).total == 0
        assert [(t.name, t.count) for t in await reader.tags("", 10)] == [("new", 3), ("old", 2)]
    finally:
        await writer.close()
        await reader.close()


async def test_a_process_further_behind_than_the_kept_changes_loads_the_index_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "KEEP_CHANGES", 3)
    path = tmp_path / "shared.sqlite3"
    writer, reader = SqliteSearch(path), SqliteSearch(path)
    try:
        await writer.add_documents([doc(0, "a")])
        assert (await reader.search(SearchQuery(all_tags=("a",)), 10)).total == 1
        for n in range(1, 10):  # nine changes: the first six of them are forgotten
            await writer.add_documents([doc(n, "a" if n % 2 else "b")])
        await writer.add_documents([doc(0, "b")])
        assert (await reader.search(SearchQuery(all_tags=("a",)), 10)).total == 5
        assert (await reader.search(SearchQuery(all_tags=("b",)), 10)).total == 5
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT count(*) FROM changes").fetchone()[0] <= 3
    finally:
        await writer.close()
        await reader.close()


async def test_a_failed_write_numbers_no_tag_for_later_writes(tmp_path: Path) -> None:
    """Tag ids numbered in a transaction that rolls back must not be remembered by the writer."""
    search = SqliteSearch(tmp_path / "search.sqlite3")
    try:
        bad = doc(1, "fresh_tag").model_copy(update={"Width": 2**70})  # too large to store: the batch rolls back
        with pytest.raises(ValueError, match="64-bit"):
            await search.add_documents([bad])
        with pytest.raises(ValueError, match="64-bit"):
            await search.add_documents([doc(3, "fresh_tag"), bad])  # numbered, then rolled back
        await search.add_documents([doc(2, "another"), doc(1, "fresh_tag")])
        assert (await search.search(SearchQuery(all_tags=("fresh_tag",)), 10)).total == 1
        assert (await search.search(SearchQuery(all_tags=("another",)), 10)).total == 1
    finally:
        await search.close()


# Schema 0 as Paktum wrote it before the bitmap index: a tag table and FTS5 beside the documents.
_SCHEMA_0 = """
CREATE TABLE images (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL, rating TEXT NOT NULL,
    added INTEGER NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE INDEX images_added ON images(added);
CREATE TABLE image_tags (tag TEXT NOT NULL, image INTEGER NOT NULL REFERENCES images(rowid) ON DELETE CASCADE,
    PRIMARY KEY (tag, image)) WITHOUT ROWID;
CREATE INDEX image_tags_image ON image_tags(image);
CREATE VIRTUAL TABLE images_fts USING fts5(text, tokenize = 'unicode61');
"""


async def test_an_index_of_the_previous_schema_is_moved_with_nothing_lost(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    docs = [
        doc(n, ["shared", f"tag_{n % 7}", "blue_sky" if n % 3 else "x"], added=1_700_000_000 + n) for n in range(300)
    ]
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(_SCHEMA_0)
        for d in docs:
            values = (d.ID, json.dumps(d.to_index()), d.Rating.value, d.added_seconds, d.Width, d.Height, d.Size)
            rowid = conn.execute(
                "INSERT INTO images (id, doc, rating, added, width, height, size) VALUES (?,?,?,?,?,?,?)", values
            ).lastrowid
            conn.executemany("INSERT INTO image_tags VALUES (?, ?)", [(t, rowid) for t in d.Tags])
            conn.execute("INSERT INTO images_fts (rowid, text) VALUES (?, ?)", (rowid, " ".join(d.Tags)))
        conn.commit()
    search = SqliteSearch(path)
    try:
        assert await search.count() == 300
        newest = await search.search(SearchQuery(all_tags=("shared",), order=Order.added_desc), 3)
        assert [hit.ID for hit in newest.hits] == [d.ID for d in docs[::-1][:3]] and newest.total == 300
        assert (await search.search(SearchQuery(all_tags=("tag_3",)), 1)).total == len(range(3, 300, 7))
        assert (await search.search(SearchQuery(words=("sky",)), 1)).total == 200
        assert await search.get_document(docs[42].ID) == docs[42]
        assert [t.name for t in await search.tags("tag_", 2)] == ["tag_0", "tag_1"]
    finally:
        await search.close()
    with closing(sqlite3.connect(path)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert not tables & {"image_tags", "images_fts", "images_v0"}
        assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite.SCHEMA_VERSION
