"""The embedded search backend: SQLite with a tag table for exact tag queries and FTS5 for words.

Several processes share one file (the hasher writes, the api reads) in WAL mode. Calls run in a
small thread pool, each thread with its own connection, so the event loop never waits on disk.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from paktum_common.contracts import ImageDocument
from paktum_common.errors import SearchUnavailableError
from paktum_common.search.base import SearchBackend, SearchPage, TagCount
from paktum_common.search.query import Order, SearchQuery

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL,
    rating TEXT NOT NULL,
    added INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS images_added ON images(added);
CREATE TABLE IF NOT EXISTS image_tags (
    tag TEXT NOT NULL,
    image INTEGER NOT NULL REFERENCES images(rowid) ON DELETE CASCADE,
    PRIMARY KEY (tag, image)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS image_tags_image ON image_tags(image);
CREATE VIRTUAL TABLE IF NOT EXISTS images_fts USING fts5(text, tokenize = 'unicode61');
"""


class SqliteSearch(SearchBackend):
    def __init__(self, path: str | Path, threads: int = 4) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite")
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        with self._connect_raw() as conn:
            conn.executescript(_SCHEMA)

    def _connect_raw(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect_raw()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            try:
                return func(self._conn())
            except sqlite3.OperationalError as exc:
                raise SearchUnavailableError(f"sqlite {self.path}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def add_documents(self, docs: Sequence[ImageDocument]) -> None:
        if docs:
            await self._run(lambda conn: _write(conn, docs))

    async def get_documents(self, ids: Sequence[str]) -> dict[str, ImageDocument]:
        if not ids:
            return {}

        def read(conn: sqlite3.Connection) -> dict[str, ImageDocument]:
            marks = ",".join("?" * len(ids))
            rows = conn.execute(f"SELECT id, doc FROM images WHERE id IN ({marks})", list(ids))
            return {row[0]: ImageDocument.from_index(json.loads(row[1])) for row in rows}

        return await self._run(read)

    async def delete_documents(self, ids: Sequence[str]) -> None:
        if ids:
            await self._run(lambda conn: _delete(conn, ids))

    async def search(self, query: SearchQuery, limit: int, offset: int = 0) -> SearchPage:
        return await self._run(lambda conn: _search(conn, query, limit, offset))

    async def count(self) -> int:
        return await self._run(lambda conn: int(conn.execute("SELECT count(*) FROM images").fetchone()[0]))

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def tags(self, prefix: str, limit: int) -> list[TagCount]:
        def read(conn: sqlite3.Connection) -> list[TagCount]:
            rows = conn.execute(
                "SELECT tag, count(*) AS n FROM image_tags WHERE tag >= ? AND tag < ? "
                "GROUP BY tag ORDER BY n DESC, tag LIMIT ?",
                (*_prefix_range(prefix), limit),
            ).fetchall()
            return [TagCount(str(tag), int(count)) for tag, count in rows]

        return await self._run(read)

    async def export(self, batch: int = 1000) -> AsyncIterator[list[ImageDocument]]:
        """Every document, `batch` at a time, in insertion order (keyset pagination on rowid)."""
        after = 0
        while True:
            rows = await self._run(functools.partial(_page_after, after=after, batch=batch))
            if rows:
                after = rows[-1][0]
                yield [ImageDocument.from_index(json.loads(row[1])) for row in rows]
            if len(rows) < batch:
                return

    async def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()


def _write(conn: sqlite3.Connection, docs: Sequence[ImageDocument]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for doc in docs:
            row = conn.execute("SELECT rowid FROM images WHERE id = ?", (doc.ID,)).fetchone()
            values = (
                json.dumps(doc.to_index(), separators=(",", ":")),
                doc.Rating.value,
                doc.added_seconds,
                doc.Width,
                doc.Height,
                doc.Size,
            )
            if row:
                rowid = row[0]
                conn.execute(
                    "UPDATE images SET doc=?, rating=?, added=?, width=?, height=?, size=? WHERE rowid=?",
                    (*values, rowid),
                )
                conn.execute("DELETE FROM image_tags WHERE image = ?", (rowid,))
                conn.execute("DELETE FROM images_fts WHERE rowid = ?", (rowid,))
            else:
                rowid = conn.execute(
                    "INSERT INTO images (id, doc, rating, added, width, height, size) VALUES (?,?,?,?,?,?,?)",
                    (doc.ID, *values),
                ).lastrowid
            conn.executemany(
                "INSERT OR IGNORE INTO image_tags (tag, image) VALUES (?, ?)", [(t, rowid) for t in doc.Tags]
            )
            conn.execute("INSERT INTO images_fts (rowid, text) VALUES (?, ?)", (rowid, _fts_text(doc)))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _page_after(conn: sqlite3.Connection, after: int, batch: int) -> list[tuple[int, str]]:
    query = "SELECT rowid, doc FROM images WHERE rowid > ? ORDER BY rowid LIMIT ?"
    return [(int(row[0]), str(row[1])) for row in conn.execute(query, (after, batch))]


def _fts_text(doc: ImageDocument) -> str:
    # Underscores join the words of a tag; full-text search looks for the words themselves.
    return " ".join(tag.replace("_", " ") for tag in doc.Tags)


def _delete(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for doc_id in ids:
            row = conn.execute("SELECT rowid FROM images WHERE id = ?", (doc_id,)).fetchone()
            if row:
                conn.execute("DELETE FROM images_fts WHERE rowid = ?", (row[0],))
                conn.execute("DELETE FROM images WHERE rowid = ?", (row[0],))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


_PREFIX = "tag >= ? AND tag < ?"
_NUMERIC_COLUMNS = {"width": "i.width", "height": "i.height", "size": "i.size", "added": "i.added"}


def _prefix_range(prefix: str) -> list[str]:
    # Every string starting with `prefix` sorts between it and it followed by the highest code point.
    return [prefix, prefix + "\U0010ffff"]


@dataclass
class _Plan:
    """A query as SQL: the rows to read (`source`), the image rowid in them (`key`), and the conditions.

    A query with required tags is driven from the tag index: the first tag's index entries are the
    candidates and each further tag is a primary-key lookup, so a tag query reads only its own hits
    instead of testing every image. The images table joins in only when a condition or the order needs it.
    """

    source: str
    key: str
    source_params: list[Any] = field(default_factory=list)
    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    @property
    def sql(self) -> str:
        where = (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""
        return f" FROM {self.source}{where}"

    @property
    def all_params(self) -> list[Any]:
        return [*self.source_params, *self.params]


def _plan(query: SearchQuery) -> _Plan:
    needs_images = bool(query.ratings or query.numeric) or query.order is not Order.random
    if query.all_tags:
        first, *others = query.all_tags
        plan = _Plan("image_tags t0", "t0.image", clauses=["t0.tag = ?"], params=[first])
        for n, tag in enumerate(others, 1):
            plan.source += f" JOIN image_tags t{n} ON t{n}.tag = ? AND t{n}.image = t0.image"
            plan.source_params.append(tag)
        if needs_images:
            plan.source += " JOIN images i ON i.rowid = t0.image"
    else:
        plan = _Plan("images i", "i.rowid")
    tagged = f"{plan.key} IN (SELECT image FROM image_tags WHERE {{}})"
    for tag in query.none_tags:
        plan.clauses.append("NOT " + tagged.format("tag = ?"))
        plan.params.append(tag)
    if query.any_tags:
        plan.clauses.append(tagged.format(f"tag IN ({','.join('?' * len(query.any_tags))})"))
        plan.params.extend(query.any_tags)
    for prefix in query.prefixes:
        plan.clauses.append(tagged.format(_PREFIX))
        plan.params.extend(_prefix_range(prefix))
    for prefix in query.none_prefixes:
        plan.clauses.append("NOT " + tagged.format(_PREFIX))
        plan.params.extend(_prefix_range(prefix))
    if query.ratings:
        plan.clauses.append(f"i.rating IN ({','.join('?' * len(query.ratings))})")
        plan.params.extend(r.value for r in query.ratings)
    for numeric in query.numeric:
        plan.clauses.append(f"{_NUMERIC_COLUMNS[numeric.field]} {numeric.op} ?")
        plan.params.append(numeric.value)
    if query.words:
        plan.clauses.append(f"{plan.key} IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
        plan.params.append(" ".join('"' + w.replace('"', '""') + '"' for w in query.words))
    return plan


def _search(conn: sqlite3.Connection, query: SearchQuery, limit: int, offset: int) -> SearchPage:
    plan = _plan(query)
    total = int(conn.execute(f"SELECT count(*){plan.sql}", plan.all_params).fetchone()[0])
    if total == 0 or offset >= total:
        return SearchPage([], total)
    if query.order is Order.random:
        # A uniform sample of the hits: pick random positions, then fetch those rows in one pass.
        positions = sorted(random.sample(range(total), min(limit, total)))
        docs = _rows_at(conn, plan, positions)
        random.shuffle(docs)
    else:
        direction = "DESC" if query.order is Order.added_desc else "ASC"
        # Sort keys only, then read the page's documents: the sorter never carries the JSON of every hit.
        page = conn.execute(
            f"SELECT i.rowid{plan.sql} ORDER BY i.added {direction}, i.rowid {direction} LIMIT ? OFFSET ?",
            [*plan.all_params, limit, offset],
        ).fetchall()
        docs = _docs_in_order(conn, [row[0] for row in page])
    return SearchPage([ImageDocument.from_index(json.loads(d)) for d in docs], total)


def _rows_at(conn: sqlite3.Connection, plan: _Plan, positions: list[int]) -> list[str]:
    # fetchall builds the rows in C; only the picked positions are touched from Python.
    keys = conn.execute(f"SELECT {plan.key}{plan.sql} LIMIT ?", [*plan.all_params, positions[-1] + 1]).fetchall()
    return _docs_in_order(conn, [keys[position][0] for position in positions])


def _docs_in_order(conn: sqlite3.Connection, rowids: list[int]) -> list[str]:
    marks = ",".join("?" * len(rowids))
    found = dict(conn.execute(f"SELECT rowid, doc FROM images WHERE rowid IN ({marks})", rowids).fetchall())
    return [found[rowid] for rowid in rowids]
