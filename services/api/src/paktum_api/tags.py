"""Tag counts for autocomplete: the most used tags starting with what the user has typed so far."""

from __future__ import annotations

from paktum_common.errors import InvalidQueryError
from paktum_common.search import TAG_LIMIT_MAX, SearchBackend, TagCount

__all__ = ["TAG_LIMIT_MAX", "TagCount", "tag_counts"]


async def tag_counts(search: SearchBackend, prefix: str, limit: int) -> list[TagCount]:
    """The `limit` tags starting with `prefix` that most images have, most used first."""
    if not 1 <= limit <= TAG_LIMIT_MAX:
        raise InvalidQueryError(f"limit must be between 1 and {TAG_LIMIT_MAX}, got {limit}")
    return await search.tags(prefix.strip().lower().lstrip("-~"), limit)
