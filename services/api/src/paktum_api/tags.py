"""Tag counts for autocomplete: the most used tags starting with what the user has typed so far."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from dataclasses import dataclass

from paktum_common.errors import InvalidQueryError, SearchUnavailableError
from paktum_common.search import SearchBackend
from paktum_common.search.sqlite import SqliteSearch

TAG_LIMIT_MAX = 50


@dataclass(frozen=True)
class TagCount:
    name: str
    count: int


async def tag_counts(search: SearchBackend, prefix: str, limit: int) -> list[TagCount]:
    """The `limit` tags starting with `prefix` that most images have, most used first."""
    if not 1 <= limit <= TAG_LIMIT_MAX:
        raise InvalidQueryError(f"limit must be between 1 and {TAG_LIMIT_MAX}, got {limit}")
    prefix = prefix.strip().lower().lstrip("-~")
    if isinstance(search, SqliteSearch):
        return await asyncio.to_thread(_sqlite_tag_counts, str(search.path), prefix, limit)
    # The search interface has no tag-count call yet; each backend needs its own (Meilisearch: a facet search).
    raise SearchUnavailableError("tag counts are only available with the SQLite search backend so far")


def _sqlite_tag_counts(path: str, prefix: str, limit: int) -> list[TagCount]:
    # A read-only connection of its own: this reads the backend's tag table and never writes.
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
            rows = conn.execute(
                "SELECT tag, count(*) AS n FROM image_tags WHERE tag >= ? AND tag < ? "
                "GROUP BY tag ORDER BY n DESC, tag LIMIT ?",
                (prefix, prefix + "\U0010ffff", limit),
            ).fetchall()
    except sqlite3.Error as exc:
        raise SearchUnavailableError(f"sqlite {path}: {exc}") from exc
    return [TagCount(str(tag), int(count)) for tag, count in rows]
