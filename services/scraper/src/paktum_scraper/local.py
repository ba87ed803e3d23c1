"""The local-folder source: a post for every image file under a directory, tags from options and sidecars."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from paktum_common.contracts import LOCAL_SOURCE, MEDIA_TYPES, DeadLetter, Post, Rating, extension_of, normalize_tags
from paktum_common.errors import BadPostError, PaktumError
from paktum_common.log import log_event
from paktum_common.redis_client import as_text

log = logging.getLogger("paktum.import")

DEAD_LETTER_PAGE = 1000


class SidecarError(PaktumError):
    """A sidecar file exists but cannot be read or parsed."""


@dataclass
class ImportReport:
    found: int = 0
    published: int = 0
    hidden: int = 0  # image files skipped for a name starting with "." (theirs or a folder's above them)
    problems: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Sidecar:
    tags: list[str]
    rating: Rating | None = None


def image_files(root: Path, report: ImportReport | None = None) -> Iterator[Path]:
    """Image files under `root` in a stable order, skipping hidden files and folders (counted in `report`):
    editors' and tools' files (`.thumbnails/`, `._a.jpg` of macOS) are not pictures of the collection."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if extension_of(path.name) not in MEDIA_TYPES or not path.is_file():
            continue
        if any(part.startswith(".") for part in rel.parts):
            if report is not None:
                report.hidden += 1
            continue
        yield path


def sidecar_paths(image: Path) -> list[Path]:
    """`a.jpg.txt`, `a.txt`, `a.jpg.json`, `a.json` (gallery-dl and dataset-tool conventions)."""
    return [
        image.with_name(image.name + ".json"),
        image.with_suffix(".json"),
        image.with_name(image.name + ".txt"),
        image.with_suffix(".txt"),
    ]


def read_sidecar(path: Path) -> Sidecar:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SidecarError(f"cannot read: {exc}") from exc
    if path.suffix == ".json":
        return _json_sidecar(text)
    # One tag per line or per space; when commas are present, they separate tags that may hold spaces.
    if "," in text:
        return Sidecar(normalize_tags([t for t in text.split(",")]))
    return Sidecar(normalize_tags(text))


def _json_sidecar(text: str) -> Sidecar:
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SidecarError(f"invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SidecarError("expected a JSON object")
    raw = data.get("tags", data.get("tag_string", []))
    if isinstance(raw, dict):  # gallery-dl's tags by category
        raw = [tag for group in raw.values() if isinstance(group, list) for tag in group]
    if not isinstance(raw, str | list) or (isinstance(raw, list) and not all(isinstance(t, str) for t in raw)):
        raise SidecarError("'tags' must be a string or a list of strings")
    rating = None
    if data.get("rating"):
        try:
            rating = Rating.parse(str(data["rating"]))
        except BadPostError as exc:
            raise SidecarError(str(exc)) from exc
    return Sidecar(normalize_tags(raw), rating)


def local_posts(root: Path, tags: list[str], rating: Rating | None, report: ImportReport) -> Iterator[Post]:
    for image in image_files(root, report):
        report.found += 1
        post_tags, post_rating = list(tags), rating
        for sidecar in sidecar_paths(image):
            if not sidecar.is_file():
                continue
            try:
                found = read_sidecar(sidecar)
            except SidecarError as exc:
                report.problems["unreadable_sidecar"] += 1
                log_event(log, logging.WARNING, "sidecar ignored", path=str(sidecar), reason=str(exc))
                continue
            post_tags += found.tags
            post_rating = post_rating or found.rating
            break
        yield Post(
            source=LOCAL_SOURCE,
            source_id=str(image.relative_to(root)),
            file_url=image.resolve().as_uri(),
            tags=post_tags,
            rating=post_rating or Rating.general,
        )


async def rejected_since(redis: Redis, dead_stream: str, after: str, root: Path) -> int:
    """How many posts of files under `root` were dead-lettered after the entry ID `after`: one import's
    rejections, not every import's ever. Reads the dead letters since then a page at a time."""
    prefix = root.resolve().as_uri().rstrip("/") + "/"
    rejected = 0
    while True:
        page: list[tuple[str, dict[str, str]]] = await redis.xrange(  # type: ignore[assignment]
            dead_stream, min=f"({after}", count=DEAD_LETTER_PAGE
        )
        for entry_id, fields in page:
            after = as_text(entry_id)
            try:
                post = Post.from_stream(DeadLetter.from_stream(fields).fields)
            except BadPostError:
                continue
            rejected += post.source == LOCAL_SOURCE and post.file_url.startswith(prefix)
        if len(page) < DEAD_LETTER_PAGE:
            return rejected


async def last_entry(redis: Redis, stream: str) -> str:
    """The ID of a stream's newest entry ("0-0" when it has none), to count what comes after it."""
    newest: list[tuple[str, dict[str, str]]] = await redis.xrevrange(stream, count=1)  # type: ignore[assignment]
    return as_text(newest[0][0]) if newest else "0-0"
