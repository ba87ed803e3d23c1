"""Banned-tag purge: remove every image with a banned tag (or near a purged picture) everywhere, and remember it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import numpy as np
from redis.asyncio import Redis

from paktum_cleanup.catalogue import Catalogue
from paktum_cleanup.progress import Progress
from paktum_cleanup.variants import variant_pairs
from paktum_common import keys
from paktum_common.groups import remove_from_groups
from paktum_common.log import log_event
from paktum_common.registry import IMAGES, PURGED
from paktum_common.search import SearchBackend
from paktum_common.store import ImageStore

log = logging.getLogger("paktum.cleanup")

PURGE_BATCH = 500


@dataclass(frozen=True)
class PurgeReport:
    banned_tag: int  # images removed for carrying a banned tag
    near_purged: int  # images removed for being a re-upload of an earlier purged picture

    @property
    def total(self) -> int:
        return self.banned_tag + self.near_purged


async def purge(
    redis: Redis, search: SearchBackend, store: ImageStore, catalogue: Catalogue, distance: int, progress: Progress
) -> tuple[Catalogue, PurgeReport]:
    """Purge and return the catalogue without the purged images."""
    tagged = set(catalogue.banned)
    near = await _near_purged(redis, catalogue, distance)
    targets = sorted(tagged | near)
    progress.start("purge", len(targets))
    for start in range(0, len(targets), PURGE_BATCH):
        batch = targets[start : start + PURGE_BATCH]
        ids = [catalogue.ids[i] for i in batch]
        # Remember first, remove after: a run cut short still refuses the re-upload, and the next run
        # finds what is left to remove.
        await PURGED.add(redis, {catalogue.ids[i]: int(catalogue.phashes[i]) for i in batch})
        await redis.sadd(keys.BANNED_MD5, *ids)
        await search.delete_documents(ids)
        for i in batch:
            await asyncio.to_thread(store.delete, catalogue.filenames[i])
        await IMAGES.remove(redis, ids)
        await remove_from_groups(redis, ids, distance)
        for i in batch:
            reason = "banned tag" if i in tagged else "re-upload of a purged image"
            log_event(log, logging.INFO, "image purged", md5=catalogue.ids[i], reason=reason)
        progress.advance(len(batch))
    progress.finish()
    report = PurgeReport(banned_tag=len(tagged), near_purged=len(near))
    return catalogue.without(catalogue.ids[i] for i in targets), report


async def _near_purged(redis: Redis, catalogue: Catalogue, distance: int) -> set[int]:
    """Positions of images within `distance` of a purged picture: one purged before, or one purged now.

    One exact pass over the indexed hashes and the purged ones not in the index any more.
    """
    purged = await PURGED.scan(redis)
    if not len(catalogue) or not (purged or catalogue.banned):
        return set()
    indexed = set(catalogue.ids)
    outside = np.array([ph for md5, ph in purged.items() if md5 not in indexed], dtype=np.uint64)
    combined = np.concatenate([catalogue.phashes, outside])
    pairs = await asyncio.to_thread(variant_pairs, combined, distance)
    n = len(catalogue)
    is_purged = np.zeros(combined.size, dtype=bool)
    is_purged[n:] = True
    is_purged[np.array(catalogue.banned, dtype=np.int64)] = True
    left, right = pairs[:, 0], pairs[:, 1]
    near = np.concatenate([left[is_purged[right] & ~is_purged[left]], right[is_purged[left] & ~is_purged[right]]])
    return {int(i) for i in near if i < n}
