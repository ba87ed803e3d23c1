"""The embedded search backend: SQLite holds the documents and their change order; each serving process
answers from an in-memory bitmap index of them (paktum_common.search.bitmaps).

Several processes share one file in WAL mode: the hashers write, the api reads (and writes tag edits).
Every write appends the changed images to the `changes` table in the same transaction; a process that
answers a search first reads the changes after the last one it applied (one indexed lookup when there are
none) and brings its index up to date, so a document is searchable in every process as soon as it is
committed. The first search of a process loads the whole index (about two seconds per million images).
A process that falls more than KEEP_CHANGES behind (the table keeps that many) loads it again.
Documents read by ID are kept parsed in memory and followed the same way (paktum_common.search.documents).

Calls run in threads, never on the event loop: writes and document reads in a small pool, each thread with
its own connection; the index in one thread of its own (it is not thread-safe, and its operations are
short: the GIL would serialise them anyway).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import functools
import gc
import logging
import random
import sqlite3
import struct
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import orjson

from paktum_common.contracts import ImageDocument
from paktum_common.errors import SearchUnavailableError
from paktum_common.search.base import SearchBackend, SearchPage, TagCount
from paktum_common.search.bitmaps import Columns, Row, TagBitmaps, rating_code, rating_value
from paktum_common.search.documents import DocumentMemory
from paktum_common.search.query import Order, SearchQuery

T = TypeVar("T")
log = logging.getLogger("paktum.search")

SCHEMA_VERSION = 1
KEEP_CHANGES = 200_000  # changes kept for processes that are behind; further behind, they reload
DOCUMENTS_KEPT = 10_000  # parsed documents kept in memory (paktum_common.search.documents)
_CHUNK = 500  # values per `IN (...)` list
_TAG_ID = np.dtype("<u4")  # a tag list is stored as its tag ids, little-endian 32-bit, end to end

# `images` holds what the index needs, narrow so that loading it reads little; `documents` the documents.
# Both of its columns are packed for numpy, so loading a million rows builds three Python objects per row,
# not eight: `fields` is (rating code, added, width, height, size) as little-endian int64 (FIELDS), `tags`
# the tag ids, numbered once in `tag_names` (never renumbered or reused), as little-endian uint32.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    fields BLOB NOT NULL,
    tags BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    image INTEGER PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tag_names (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    image INTEGER NOT NULL,
    old_tags BLOB
);
"""

_ROW = "SELECT rowid, fields, tags FROM images"
FIELDS = np.dtype([("rating", "<i8"), ("added", "<i8"), ("width", "<i8"), ("height", "<i8"), ("size", "<i8")])
_PACK = struct.Struct("<5q")


def _pack(doc: ImageDocument) -> bytes:
    try:
        return _PACK.pack(rating_code(doc.Rating.value), doc.added_seconds, doc.Width, doc.Height, doc.Size)
    except struct.error as exc:
        raise ValueError(f"image {doc.ID}: a number does not fit a signed 64-bit integer ({exc})") from exc


class SqliteSearch(SearchBackend):
    def __init__(self, path: str | Path, threads: int = 4, documents_kept: int = DOCUMENTS_KEPT) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite")
        self._index_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-index")
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._bitmaps: TagBitmaps | None = None  # loaded by the first search, only touched in _index_thread
        self._seq = 0  # the last change the bitmaps reflect
        self._names: dict[int, str] = {}  # tag id -> tag, for the bitmaps (index thread)
        self._tag_ids = _TagIds()  # tag -> tag id, for writes
        self._documents = DocumentMemory(documents_kept)  # parsed documents read by ID (get_documents)
        self._loop_conn: sqlite3.Connection | None = None  # the event loop's, for the feed's head only
        conn = self._connect_raw()
        try:
            _create_or_migrate(conn, self._tag_ids)
        finally:
            conn.close()

    def _connect_raw(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # 32 MiB of page cache (the default is 2): the unique index of IDs outgrows 2 MiB near 100k images,
        # and inserting random IDs then reads a page from disk for most of them.
        conn.execute("PRAGMA cache_size=-32768")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect_raw()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _run(self, func: Callable[[sqlite3.Connection], T], pool: ThreadPoolExecutor | None = None) -> T:
        def call() -> T:
            try:
                return func(self._conn())
            except sqlite3.OperationalError as exc:
                raise SearchUnavailableError(f"sqlite {self.path}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(pool or self._pool, call)

    async def _with_index(self, func: Callable[[TagBitmaps], T]) -> T:
        """Run `func` on the bitmap index brought up to date, in the index's own thread."""
        return await self._run(lambda conn: func(self._current(conn)), self._index_thread)

    def _current(self, conn: sqlite3.Connection) -> TagBitmaps:
        head = _head(conn)
        if self._bitmaps is not None and head == self._seq:
            return self._bitmaps
        conn.execute("BEGIN")  # one snapshot for the changes and the rows they name
        try:
            self._bitmaps, self._seq = _catch_up(conn, self._bitmaps, self._seq, self._names)
        finally:
            conn.execute("COMMIT")
        return self._bitmaps

    async def add_documents(self, docs: Sequence[ImageDocument]) -> None:
        if docs:
            await self._run(lambda conn: _write(conn, docs, self._tag_ids))

    async def get_documents(self, ids: Sequence[str]) -> dict[str, ImageDocument]:
        if not ids:
            return {}
        found: dict[str, ImageDocument] = {}
        missing: Sequence[str] = ids
        if self._documents.capacity > 0 and self._loop_head() == self._documents.seq:
            # Nothing changed since the memory last followed the feed: what it holds is current, here and now.
            found, missing = self._documents.lookup(ids)
            if not missing:
                return found

        def read(conn: sqlite3.Connection) -> dict[str, ImageDocument]:
            conn.execute("BEGIN")  # one snapshot for the feed's head and the documents
            try:
                head = _head(conn)
                self._documents.follow(conn, head)  # what changed is taken out: the rest is current
                held, unread = self._documents.lookup(missing)
                rows: list[tuple[int, str]] = []
                if unread:
                    rows = conn.execute(
                        "SELECT i.rowid, d.doc FROM images i JOIN documents d ON d.image = i.rowid "
                        f"WHERE i.id IN ({','.join('?' * len(unread))})",
                        unread,
                    ).fetchall()
            finally:
                conn.execute("COMMIT")
            docs = [(int(rowid), _document(doc)) for rowid, doc in rows]
            self._documents.store(docs, head)
            return {**held, **{doc.ID: doc for _, doc in docs}}

        return {**found, **await self._run(read)}

    def _loop_head(self) -> int | None:
        """The feed's newest change, read on the event loop: one indexed lookup of a row, never a wait (a busy
        database, or any other failure, answers None and the read takes the thread as before)."""
        try:
            if self._loop_conn is None:
                self._loop_conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
                with self._lock:
                    self._connections.append(self._loop_conn)
            return _head(self._loop_conn)
        except sqlite3.Error:
            return None

    async def delete_documents(self, ids: Sequence[str]) -> None:
        if ids:
            await self._run(lambda conn: _delete(conn, ids))

    async def search(self, query: SearchQuery, limit: int, offset: int = 0) -> SearchPage:
        def find(bitmaps: TagBitmaps) -> tuple[int, list[int]]:
            hits = bitmaps.hits(query)
            total = len(hits)
            if total == 0 or offset >= total or limit <= 0:
                return total, []
            if query.order is Order.random:
                # A uniform sample of the hits: random distinct ranks, each read from the bitmap by rank.
                positions = random.sample(range(total), min(limit, total))
                return total, bitmaps.page(hits, query.order, limit, offset, positions)
            return total, bitmaps.page(hits, query.order, limit, offset)

        def answer(conn: sqlite3.Connection) -> SearchPage:
            total, ordinals = find(self._current(conn))
            # The page's documents in the same call: a second thread hop cost more than reading them here.
            return SearchPage(_docs_in_order(conn, ordinals) if ordinals else [], total)

        return await self._run(answer, self._index_thread)

    async def tags(self, prefix: str, limit: int) -> list[TagCount]:
        counts = await self._with_index(lambda bitmaps: bitmaps.tags(prefix, limit))
        return [TagCount(tag, count) for tag, count in counts]

    async def warm(self) -> None:
        await self._with_index(TagBitmaps.prepare)

    async def count(self) -> int:
        if self._bitmaps is not None:  # a process that searches: its index knows (a scan of 1M rows takes ms)
            return await self._with_index(len)
        return await self._run(lambda conn: int(conn.execute("SELECT count(*) FROM images").fetchone()[0]))

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def export(self, batch: int = 1000) -> AsyncIterator[list[ImageDocument]]:
        """Every document, `batch` at a time, in insertion order (keyset pagination on rowid)."""
        after = 0
        while True:
            rows = await self._run(functools.partial(_page_after, after=after, batch=batch))
            if rows:
                after = rows[-1][0]
                yield [_document(row[1]) for row in rows]
            if len(rows) < batch:
                return

    async def close(self) -> None:
        self._index_thread.shutdown(wait=True)
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._bitmaps = None


class _TagIds:
    """tag -> id as `tag_names` has them; shared by the writing threads (ids never change once committed)."""

    def __init__(self) -> None:
        self.known: dict[str, int] = {}
        self._lock = threading.Lock()

    def encode(self, conn: sqlite3.Connection, tags: Sequence[str], pending: dict[str, int]) -> bytes:
        """The tag list as stored, numbering new tags inside the caller's write transaction.

        Ids numbered in this transaction go to `pending`, and to `known` only once it commits (`commit`).
        """
        missing = [tag for tag in dict.fromkeys(tags) if tag not in self.known and tag not in pending]
        if missing:
            conn.executemany("INSERT OR IGNORE INTO tag_names (name) VALUES (?)", [(tag,) for tag in missing])
            for start in range(0, len(missing), _CHUNK):
                chunk = missing[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                pending.update(conn.execute(f"SELECT name, id FROM tag_names WHERE name IN ({marks})", chunk))
        ids = array.array("I", [pending[tag] if tag in pending else self.known[tag] for tag in tags])
        if sys.byteorder != "little":
            ids.byteswap()
        return ids.tobytes()

    def commit(self, pending: dict[str, int]) -> None:
        if pending:
            with self._lock:
                self.known.update(pending)


def _decode(blob: bytes | None, names: dict[int, str]) -> tuple[str, ...]:
    if not blob:
        return ()
    return tuple(names[int(tag_id)] for tag_id in np.frombuffer(blob, dtype=_TAG_ID))


def _create_or_migrate(conn: sqlite3.Connection, tag_ids: _TagIds) -> None:
    # One process creates or migrates; the others wait (a migration of a large index takes minutes).
    conn.execute("PRAGMA busy_timeout = 900000")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise SearchUnavailableError(
                f"the search index was written by a newer Paktum (schema {version}, this one reads {SCHEMA_VERSION})"
            )
        legacy = version == 0 and conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'image_tags'").fetchone()
        if legacy:
            conn.execute("ALTER TABLE images RENAME TO images_v0")
        for statement in _SCHEMA.strip().split(";\n"):
            conn.execute(statement)
        if legacy:
            _migrate_from_0(conn, tag_ids)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _migrate_from_0(conn: sqlite3.Connection, tag_ids: _TagIds) -> None:
    """Schema 0 kept the documents with a tag table and an FTS5 table; rewrite them into schema 1."""
    log.info("search index: moving to schema %d (once; every document is rewritten)", SCHEMA_VERSION)
    after = 0
    moved = 0
    while True:
        rows = conn.execute("SELECT rowid, doc FROM images_v0 WHERE rowid > ? ORDER BY rowid LIMIT 2000", (after,))
        batch = rows.fetchall()
        if not batch:
            break
        after = int(batch[-1][0])
        docs = [_document(doc) for _, doc in batch]
        # The rowids stay: they are the images' ordinals, and nothing else refers to them.
        _write_rows(conn, docs, tag_ids, {}, rowids=[int(rowid) for rowid, _ in batch])
        moved += len(batch)
    for table in ("images_fts", "image_tags", "images_v0"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute("DELETE FROM changes")
    log.info("search index: %d documents moved to schema %d", moved, SCHEMA_VERSION)


def _document(stored: str) -> ImageDocument:
    """A document as the `documents` table holds it (ImageDocument.to_index_json)."""
    return ImageDocument.from_index(orjson.loads(stored))  # a third of json.loads's time


def _head(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    return int(row[0]) if row else 0


def _catch_up(
    conn: sqlite3.Connection, bitmaps: TagBitmaps | None, seq: int, names: dict[int, str]
) -> tuple[TagBitmaps, int]:
    """The index at the newest change of this read transaction: `bitmaps` with the changes after `seq`
    applied, or a fresh load when there is no index yet or the changes after `seq` are no longer kept.
    The caller has seen a change after `seq` (SqliteSearch._current answers without one)."""
    head = _head(conn)
    newest = max(names, default=0)
    names.update(conn.execute("SELECT id, name FROM tag_names WHERE id > ?", (newest,)))
    changes = (
        []
        if bitmaps is None
        else conn.execute(
            "SELECT seq, image, old_tags FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (seq, KEEP_CHANGES)
        ).fetchall()
    )
    if bitmaps is None or not changes or changes[0][0] != seq + 1 or changes[-1][0] != head:
        fresh = TagBitmaps()
        with _no_cycle_collection():  # a million fetched rows would set it off over and over: half the time
            fresh.load(_columns(conn, names))
        return fresh, head
    removed: dict[int, set[str]] = {}
    for _, image, old_tags in changes:
        removed.setdefault(int(image), set()).update(_decode(old_tags, names))
    ordinals = list(removed)
    current: list[Row] = []
    for start in range(0, len(ordinals), _CHUNK):
        chunk = ordinals[start : start + _CHUNK]
        rows = conn.execute(f"{_ROW} WHERE rowid IN ({','.join('?' * len(chunk))})", chunk)
        current.extend(
            Row(int(rowid), _decode(tags, names), rating_value(code), added, width, height, size)
            for rowid, (code, added, width, height, size), tags in ((r, _PACK.unpack(f), t) for r, f, t in rows)
        )
    bitmaps.apply(removed, current)
    return bitmaps, head


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _columns(conn: sqlite3.Connection, names: dict[int, str]) -> Columns:
    rows = conn.execute(_ROW).fetchall()
    rowids, fields, tags = zip(*rows, strict=True) if rows else ((), (), ())
    del rows
    packed = np.frombuffer(b"".join(fields), dtype=FIELDS)
    return Columns(
        ordinals=np.asarray(rowids, dtype=np.int64),
        ratings=packed["rating"].astype(np.int64),
        added=packed["added"].astype(np.int64),
        width=packed["width"].astype(np.int64),
        height=packed["height"].astype(np.int64),
        size=packed["size"].astype(np.int64),
        tag_ids=np.frombuffer(b"".join(tags), dtype=_TAG_ID).astype(np.uint32),
        tag_counts=np.fromiter(map(len, tags), dtype=np.int64, count=len(tags)) // _TAG_ID.itemsize,
        names=names,
    )


def _write(conn: sqlite3.Connection, docs: Sequence[ImageDocument], tag_ids: _TagIds) -> None:
    conn.execute("BEGIN IMMEDIATE")
    pending: dict[str, int] = {}
    try:
        _write_rows(conn, docs, tag_ids, pending)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    tag_ids.commit(pending)


def _write_rows(
    conn: sqlite3.Connection,
    docs: Sequence[ImageDocument],
    tag_ids: _TagIds,
    pending: dict[str, int],
    rowids: Sequence[int] | None = None,
) -> None:
    """Insert or replace `docs` inside the caller's write transaction, logging each change.

    New images get the ordinals after the largest in use (or `rowids`, when a migration keeps them), so
    the whole batch goes in with a few statements instead of a few per document.
    """
    docs = list({doc.ID: doc for doc in docs}.values())  # the last of one ID wins, as one by one would
    existing: dict[str, tuple[int, bytes]] = {}
    ids = [doc.ID for doc in docs]
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = conn.execute(f"SELECT id, rowid, tags FROM images WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        existing.update((str(doc_id), (int(rowid), bytes(tags))) for doc_id, rowid, tags in rows)
    next_rowid = int(conn.execute("SELECT coalesce(max(rowid), 0) FROM images").fetchone()[0]) + 1
    inserts: list[tuple[object, ...]] = []
    updates: list[tuple[object, ...]] = []
    changes: list[tuple[int, bytes | None]] = []
    documents: list[tuple[int, str]] = []
    for n, doc in enumerate(docs):
        values = (_pack(doc), tag_ids.encode(conn, doc.Tags, pending))
        known = existing.get(doc.ID)
        if known:
            rowid = known[0]
            updates.append((*values, rowid))
            changes.append((rowid, known[1]))
        else:
            if rowids is not None:
                rowid = rowids[n]
            else:
                rowid, next_rowid = next_rowid, next_rowid + 1
            inserts.append((rowid, doc.ID, *values))
            changes.append((rowid, None))
        documents.append((rowid, doc.to_index_json()))
    conn.executemany("UPDATE images SET fields=?, tags=? WHERE rowid=?", updates)
    conn.executemany("INSERT INTO images (rowid, id, fields, tags) VALUES (?,?,?,?)", inserts)
    conn.executemany("INSERT OR REPLACE INTO documents (image, doc) VALUES (?, ?)", documents)
    _log_changes(conn, changes)


def _log_changes(conn: sqlite3.Connection, changes: list[tuple[int, bytes | None]]) -> None:
    """Record what changed (with the tags it had, for the indexes to take out) and forget old changes."""
    conn.executemany("INSERT INTO changes (image, old_tags) VALUES (?, ?)", changes)
    conn.execute("DELETE FROM changes WHERE seq <= ?", (_head(conn) - KEEP_CHANGES,))


def _page_after(conn: sqlite3.Connection, after: int, batch: int) -> list[tuple[int, str]]:
    query = "SELECT image, doc FROM documents WHERE image > ? ORDER BY image LIMIT ?"
    return [(int(row[0]), str(row[1])) for row in conn.execute(query, (after, batch))]


def _delete(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        changes: list[tuple[int, bytes | None]] = []
        for doc_id in ids:
            row = conn.execute("SELECT rowid, tags FROM images WHERE id = ?", (doc_id,)).fetchone()
            if row:
                conn.execute("DELETE FROM images WHERE rowid = ?", (row[0],))
                conn.execute("DELETE FROM documents WHERE image = ?", (row[0],))
                changes.append((int(row[0]), bytes(row[1])))
        _log_changes(conn, changes)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _docs_in_order(conn: sqlite3.Connection, rowids: list[int]) -> list[ImageDocument]:
    """The documents of `rowids` in that order; one deleted since the index answered is left out."""
    marks = ",".join("?" * len(rowids))
    found = dict(conn.execute(f"SELECT image, doc FROM documents WHERE image IN ({marks})", rowids).fetchall())
    return [_document(found[rowid]) for rowid in rowids if rowid in found]
