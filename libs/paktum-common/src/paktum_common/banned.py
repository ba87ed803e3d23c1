"""Banned tags: one configurable list (setting and/or file) that the scraper and cleanup both obey."""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.contracts import normalize_tags
from paktum_common.errors import PaktumError
from paktum_common.redis_client import as_text
from paktum_common.settings import Settings


def load_banned_tags(settings: Settings) -> frozenset[str]:
    """PAKTUM_BANNED_TAGS plus the lines of PAKTUM_BANNED_TAGS_FILE (`#` starts a comment). No built-in list."""
    raw = list(settings.banned_tags)
    if settings.banned_tags_file is not None:
        try:
            text = settings.banned_tags_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PaktumError(f"cannot read PAKTUM_BANNED_TAGS_FILE {settings.banned_tags_file}: {exc}") from exc
        for line in text.splitlines():
            raw.extend(line.partition("#")[0].replace(",", " ").split())
    return frozenset(normalize_tags(raw))


def banned_in(tags: Iterable[str], banned: frozenset[str]) -> list[str]:
    """The banned tags among `tags`, in their order (empty: the post may pass)."""
    return [tag for tag in tags if tag in banned]


async def banned_tags_now(redis: Redis, settings: Settings) -> frozenset[str]:
    """The configured list plus the tags an admin banned at run time (kept in Redis, so they last)."""
    runtime = await redis.smembers(keys.BANNED_TAGS)
    return load_banned_tags(settings) | frozenset(normalize_tags([as_text(tag) for tag in runtime]))
