"""The Meilisearch index setup as numbered migrations, recorded in Meilisearch and applied once, in order.

Applied versions are documents of the index `<index>_migrations`. Whoever finds one missing takes a
lock first: creating the index `<index>_migrations_lock`. Meilisearch runs its tasks one at a time,
so of several processes creating it at once exactly one succeeds; the others wait for the lock to
go, then find the work done. A lock older than `stale_after` (its holder died mid-way, or lost
Meilisearch before it could release it) is broken: every migration is idempotent, so the worst a
broken lock can do is have one applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from paktum_common.errors import SearchUnavailableError
from paktum_common.log import log_event
from paktum_common.search.base import TAG_LIMIT_MAX
from paktum_common.search.meili_client import MeiliClient, MeiliError
from paktum_common.search.meili_query import ADDED_TS, ID, NUMERIC_ATTRIBUTES, RATING, TAG_PREFIXES, TAGS

log = logging.getLogger("paktum.search.meili")

# Exact totals need Meilisearch to count every hit; beyond this many hits a query is cut short.
MAX_TOTAL_HITS = 100_000_000


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[MeiliClient, str], Awaitable[None]]


async def _create_index(client: MeiliClient, index: str) -> None:
    try:
        await client.run_task("POST", "/indexes", {"uid": index, "primaryKey": ID}, f"create index {index}")
    except MeiliError as exc:
        if exc.code != "index_already_exists":
            raise


# A migration once released never changes: a new setting is a new migration.
SETTINGS = {
    # Meilisearch's default separators include `_`, so full text finds the words inside tags, as SQLite's does.
    "searchableAttributes": ["Tagstring"],
    "filterableAttributes": [TAGS, TAG_PREFIXES, RATING, ID, *NUMERIC_ATTRIBUTES.values()],
    "sortableAttributes": [ADDED_TS, "Size", "Width", "Height"],
    # Tags are matched exactly; a typo-tolerant match would find a neighbouring tag's images.
    "typoTolerance": {"enabled": False},
    "pagination": {"maxTotalHits": MAX_TOTAL_HITS},
}


async def _settings(client: MeiliClient, index: str) -> None:
    await client.run_task("PATCH", f"/indexes/{index}/settings", SETTINGS, f"settings of {index}")


# How many values one facet search answers with. Meilisearch keeps the most used ones (by the count
# order below) of every value that matches, so any tag used more often than the least used one answered
# is certain to be among them: a margin over the TAG_LIMIT_MAX that autocomplete asks for.
FACET_VALUES = 4 * TAG_LIMIT_MAX
FACETING = {
    "faceting": {
        "maxValuesPerFacet": FACET_VALUES,
        # Facet search ranks by count from Meilisearch 1.7 on (before, by name: see meili.TAG_COUNTS_SINCE).
        "sortFacetValuesBy": {"*": "alpha", TAGS: "count"},
    }
}


async def _faceting(client: MeiliClient, index: str) -> None:
    await client.run_task("PATCH", f"/indexes/{index}/settings", FACETING, f"faceting settings of {index}")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create the images index with primary key ID", _create_index),
    Migration(2, "searchable, filterable and sortable attributes; no typos; exact totals", _settings),
    Migration(3, "facet search on Tags answers the most used values first, up to FACET_VALUES", _faceting),
)


MIN_VERSION = (1, 4)  # filter values unescape `\\` since 1.4; before it a tag with a backslash cannot match


async def check_version(client: MeiliClient) -> tuple[int, int] | None:
    """Refuse a Meilisearch too old for the filters Paktum writes; tolerate a key not allowed to ask.

    Returns its (major, minor) version, or None when the key may not read it or the answer names none.
    """
    try:
        answer = await client.request("GET", "/version")
    except MeiliError as exc:
        if exc.kind != "auth":
            raise
        log_event(log, logging.WARNING, "cannot read the Meilisearch version with this key; assuming 1.4 or newer")
        return None
    text = str(answer.get("pkgVersion", "")) if isinstance(answer, dict) else ""
    parts = [int(part) for part in re.findall(r"\d+", text)[:2]]
    if len(parts) != 2:
        return None
    found = (parts[0], parts[1])
    if found < MIN_VERSION:
        raise MeiliError(f"Paktum needs Meilisearch {'.'.join(map(str, MIN_VERSION))} or newer, found {text}")
    return found


def migrations_index(index: str) -> str:
    return f"{index}_migrations"


def lock_index(index: str) -> str:
    return f"{index}_migrations_lock"


async def applied_versions(client: MeiliClient, index: str) -> set[int]:
    """The versions recorded as applied; none if the index itself is gone (deleted by hand: set it up anew)."""
    try:
        await client.request("GET", f"/indexes/{index}")
    except MeiliError as exc:
        if exc.code == "index_not_found":
            return set()
        raise
    try:
        answer = await client.request(
            "GET", f"/indexes/{migrations_index(index)}/documents", params={"limit": 1000, "fields": "version"}
        )
    except MeiliError as exc:
        if exc.code == "index_not_found":
            return set()
        raise
    return {int(doc["version"]) for doc in answer.get("results", [])}


async def migrate(
    client: MeiliClient,
    index: str,
    migrations: Sequence[Migration] = MIGRATIONS,
    lock_wait: float = 30.0,
    stale_after: float = 60.0,
) -> list[int]:
    """Apply the migrations this index lacks; return the versions this call applied."""
    applied = await applied_versions(client, index)
    _warn_if_newer(applied, migrations, index)
    if all(m.version in applied for m in migrations):
        return []
    await _acquire(client, index, lock_wait, stale_after)
    done: list[int] = []
    release = f"/indexes/{lock_index(index)}"
    try:
        applied = await applied_versions(client, index)  # another process may have finished meanwhile
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in applied:
                continue
            await migration.apply(client, index)
            await client.run_task(
                "POST",
                f"/indexes/{migrations_index(index)}/documents?primaryKey=version",
                [{"version": migration.version, "name": migration.name, "appliedAt": int(time.time())}],
                f"record migration {migration.version}",
            )
            done.append(migration.version)
            log_event(log, logging.INFO, "index migration applied", index=index, version=migration.version,
                      migration=migration.name)  # fmt: skip
    except BaseException:
        # The failure that stopped the migrations is the one to report, not a failed release after it.
        with contextlib.suppress(SearchUnavailableError):
            await client.run_task("DELETE", release, what="release the migration lock")
        raise
    await client.run_task("DELETE", release, what="release the migration lock")
    return done


def _warn_if_newer(applied: set[int], migrations: Sequence[Migration], index: str) -> None:
    known = {m.version for m in migrations}
    if applied - known:
        log_event(log, logging.WARNING, "index was set up by a newer Paktum", index=index,
                  unknown_versions=sorted(applied - known))  # fmt: skip


async def _acquire(client: MeiliClient, index: str, lock_wait: float, stale_after: float) -> None:
    lock = lock_index(index)
    deadline = time.monotonic() + lock_wait
    while True:
        try:
            await client.run_task("POST", "/indexes", {"uid": lock, "primaryKey": "holder"}, "take the migration lock")
            return
        except MeiliError as exc:
            if exc.code != "index_already_exists":
                raise
        created = await _created_at(client, lock)
        if created is not None and time.time() - created > stale_after:
            log_event(log, logging.WARNING, "breaking a stale migration lock", index=index, lock_age_s=round(
                time.time() - created))  # fmt: skip
            await client.run_task("DELETE", f"/indexes/{lock}", what="break a stale migration lock")
            continue
        if time.monotonic() >= deadline:
            raise SearchUnavailableError(
                f"another process is applying the migrations of meilisearch index {index!r} "
                f"(lock index {lock!r}); try again shortly"
            )
        await asyncio.sleep(0.25)


_FRACTION = re.compile(r"\.(\d+)")


async def _created_at(client: MeiliClient, uid: str) -> float | None:
    try:
        answer = await client.request("GET", f"/indexes/{uid}")
    except MeiliError as exc:
        if exc.code == "index_not_found":
            return None  # released meanwhile: try again at once
        raise
    return parse_timestamp(str(answer.get("createdAt", "")))


def parse_timestamp(value: str) -> float | None:
    """Meilisearch's RFC 3339 times carry nanoseconds, more digits than datetime reads."""
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.replace("Z", "+00:00"), count=1)
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
