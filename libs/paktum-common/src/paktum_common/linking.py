"""What follows an index write: refuse re-uploads of purged pictures, link the rest into variant groups."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from redis.asyncio import Redis

from paktum_common import keys, metrics
from paktum_common.groups import link_images
from paktum_common.log import log_event
from paktum_common.models import ImageDocument
from paktum_common.registry import PURGED
from paktum_common.search import SearchBackend
from paktum_common.settings import Settings
from paktum_common.store import ImageStore

log = logging.getLogger("paktum.linking")

REFUSED = metrics.counter("hasher", "refused_reuploads_total", "Images removed again: near a purged image's pHash.")
LINKED = metrics.counter("hasher", "linked_images_total", "Indexed images that joined a variant group at once.")


async def after_index(
    redis: Redis, search: SearchBackend, store: ImageStore, settings: Settings, docs: Sequence[ImageDocument]
) -> None:
    """Run right after `docs` were written to the index. Never raises: the cleanup run repairs what fails here."""
    try:
        kept = await refuse_purged(redis, search, store, settings.variant_distance, docs)
        LINKED.inc(await link_images(redis, {d.ID: d.PHash for d in kept}, settings.variant_distance))
    except Exception as exc:
        log_event(log, logging.WARNING, "variant linking failed; the next cleanup run repairs it", reason=str(exc))


async def refuse_purged(
    redis: Redis, search: SearchBackend, store: ImageStore, distance: int, docs: Sequence[ImageDocument]
) -> list[ImageDocument]:
    """Remove again the images within `distance` of a purged image's pHash; return the others."""
    near = await PURGED.near(redis, [d.PHash for d in docs], distance)
    refused = [(doc, hits[0]) for doc, hits in zip(docs, near, strict=True) if hits]
    if refused:
        # Ban the md5 first: the scraper then skips the file even if the removal below is cut short.
        await redis.sadd(keys.BANNED_MD5, *(doc.ID for doc, _ in refused))
        await search.delete_documents([doc.ID for doc, _ in refused])
        for doc, (purged, bits) in refused:
            await asyncio.to_thread(store.delete, doc.Filename)
            REFUSED.inc()
            log_event(
                log, logging.INFO, "re-upload of a purged image refused",
                md5=doc.ID, source=doc.Source, post=doc.SourceID, purged=purged, bits=bits,
            )  # fmt: skip
    gone = {doc.ID for doc, _ in refused}
    return [doc for doc in docs if doc.ID not in gone]
