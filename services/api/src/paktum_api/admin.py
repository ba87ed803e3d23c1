"""Admin: the bearer-token check and what the admin mutations do (scrape, delete, ban, not-variants)."""

from __future__ import annotations

import hmac
import logging
import time

from redis.typing import EncodableT, FieldT

from paktum_api.state import AppState
from paktum_common import keys
from paktum_common.errors import PaktumError
from paktum_common.groups import mark_not_variants
from paktum_common.log import log_event
from paktum_common.models import normalize_tags

log = logging.getLogger("paktum.api")

SCRAPE_REQUESTS_KEEP = 10_000  # the stream is a work queue, not an archive: trim the oldest


class NotAuthorizedError(PaktumError):
    """The request lacks the admin token (or admin features are off)."""


def check_admin(state: AppState, authorization: str | None) -> None:
    """Raise unless `Authorization: Bearer <PAKTUM_ADMIN_TOKEN>`; the comparison takes constant time."""
    token = state.settings.admin_token
    if token is None:
        raise NotAuthorizedError("admin features are off: PAKTUM_ADMIN_TOKEN is not set")
    scheme, _, given = (authorization or "").partition(" ")
    expected = token.get_secret_value().encode("utf-8")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8"), expected):
        raise NotAuthorizedError("this needs the admin token: Authorization: Bearer <token>")


async def request_scrape(state: AppState, queries: list[str], source: str | None) -> str:
    """Publish a scrape request (tag queries, one per line) for the scraper; returns the stream entry ID."""
    lines = [" ".join(normalize_tags(query)) for query in queries]
    lines = [line for line in lines if line]
    if not lines:
        raise PaktumError("a scrape request needs at least one tag query")
    fields: dict[FieldT, EncodableT] = {
        "queries": "\n".join(lines),
        "source": source or "",
        "requested": str(int(time.time())),
    }
    entry = await state.redis.xadd(keys.SCRAPE_REQUESTS, fields, maxlen=SCRAPE_REQUESTS_KEEP, approximate=True)
    log_event(log, logging.INFO, "scrape requested", entry=entry, queries=len(lines), source=source or "")
    return str(entry)


async def delete_image(state: AppState, image_id: str) -> bool:
    """Remove the image from the index and its files from the store; False if there was no such image."""
    doc = await state.search.get_document(image_id.lower())
    if doc is None:
        return False
    # Index first: once it is gone no answer links to the files, so removing them breaks no page.
    await state.search.delete_documents([doc.ID])
    state.store.delete(doc.Filename)
    log_event(log, logging.INFO, "image deleted", md5=doc.ID, filename=doc.Filename)
    return True


async def ban_tag(state: AppState, tag: str) -> str:
    """Add a tag to the run-time ban list (Redis, so it lasts); the cleanup purge and the scraper obey it."""
    names = normalize_tags([tag])
    if len(names) != 1 or names[0].startswith(("-", "~")) or "*" in names[0]:
        raise PaktumError(f"not a tag: {tag!r}")
    await state.redis.sadd(keys.BANNED_TAGS, names[0])
    log_event(log, logging.INFO, "tag banned", tag=names[0])
    return names[0]


async def unban_tag(state: AppState, tag: str) -> bool:
    """Lift a run-time ban (one from PAKTUM_BANNED_TAGS stays: configuration is changed where it is set)."""
    names = normalize_tags([tag])
    return bool(names) and bool(await state.redis.srem(keys.BANNED_TAGS, names[0]))


async def not_variants(state: AppState, a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    if a == b:
        raise PaktumError("an image cannot be marked as not a variant of itself")
    found = await state.search.get_documents([a, b])
    missing = [image_id for image_id in (a, b) if image_id not in found]
    if missing:
        raise PaktumError(f"no image with ID {missing[0]!r}")
    return await mark_not_variants(state.redis, a, b)
