"""Banned-tag purge: remove for good every image with a banned tag, every re-upload of a purged picture that
slipped in, and every removal cut short; all through the catalog's one removal path."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from paktum_cleanup.catalogue import Catalogue
from paktum_cleanup.progress import Progress
from paktum_cleanup.variants import SymmetryRows, variant_pairs
from paktum_common import keys
from paktum_common.catalog import Catalog
from paktum_common.phash import Symmetry
from paktum_common.registry import PURGED

PURGE_BATCH = 500
LOOKUP_BATCH = 10_000
NEVER = np.iinfo(np.int64).max
ALWAYS = np.iinfo(np.int64).min

BANNED_TAG = "banned tag"
REUPLOAD = "re-upload of a purged image"
UNFINISHED = "removal cut short"


@dataclass(frozen=True)
class PurgeReport:
    banned_tag: int  # images removed for carrying a banned tag
    near_purged: int  # images removed for being a re-upload of an earlier purged picture
    unfinished: int = 0  # banned images still indexed: a removal that was cut short, finished now

    @property
    def total(self) -> int:
        return self.banned_tag + self.near_purged + self.unfinished


async def purge(catalog: Catalog, catalogue: Catalogue, progress: Progress) -> tuple[Catalogue, PurgeReport]:
    """Purge and return the catalogue without the purged images."""
    tagged = set(catalogue.banned)
    unfinished = await _banned_still_indexed(catalog, catalogue) - tagged
    near = await _near_purged(catalog, catalogue) - tagged - unfinished
    reasons = {
        **dict.fromkeys(near, REUPLOAD),
        **dict.fromkeys(unfinished, UNFINISHED),
        **dict.fromkeys(tagged, BANNED_TAG),
    }
    targets = sorted(reasons)
    progress.start("purge", len(targets))
    for start in range(0, len(targets), PURGE_BATCH):
        batch = targets[start : start + PURGE_BATCH]
        for reason in (BANNED_TAG, REUPLOAD, UNFINISHED):
            ids = [catalogue.ids[i] for i in batch if reasons[i] == reason]
            if ids:
                await catalog.remove(ids, ban=True, reason=reason)
        progress.advance(len(batch))
    progress.finish()
    report = PurgeReport(banned_tag=len(tagged), near_purged=len(near), unfinished=len(unfinished))
    return catalogue.without(catalogue.ids[i] for i in targets), report


async def _banned_still_indexed(catalog: Catalog, catalogue: Catalogue) -> set[int]:
    """Positions of indexed images whose md5 is banned: a removal stopped between its ban and its end."""
    found: set[int] = set()
    for start in range(0, len(catalogue), LOOKUP_BATCH):
        ids = catalogue.ids[start : start + LOOKUP_BATCH]
        flags = await catalog.redis.smismember(keys.BANNED_MD5, ids)
        found.update(start + offset for offset, flag in enumerate(flags) if flag)
    return found


def _symmetry_rows(catalogue: Catalogue, purged_ids: list[str], stored: dict[str, Symmetry]) -> SymmetryRows:
    """The catalogue's symmetric hashes, then those of the purged pictures (numbered after the catalogue's)."""
    symmetric, owners, values = catalogue.symmetry_rows()
    n = len(catalogue)
    shapes = [(n + i, stored[m]) for i, m in enumerate(purged_ids) if m in stored]
    return (
        np.concatenate([symmetric, np.array([m in stored and stored[m].symmetric for m in purged_ids], dtype=bool)]),
        np.concatenate([owners, np.array([i for i, s in shapes for _ in s.hashes], dtype=np.int64)]),
        np.concatenate([values, np.array([h for _, s in shapes for h in s.hashes], dtype=np.uint64)]),
    )


async def _near_purged(catalog: Catalog, catalogue: Catalogue) -> set[int]:
    """Positions of images within the variant distance of a picture purged now (for a banned tag), or of one
    removed for good earlier that they came in after: a re-upload that slipped past the hasher's check.

    An image that was there before the picture near it was removed stays: an admin who deletes one copy of
    a picture keeps the others. One exact pass over the indexed hashes and the purged ones.
    """
    purged = await PURGED.scan(catalog.redis)
    if not len(catalogue) or not (purged or catalogue.banned):
        return set()
    purged_ids = list(purged)
    removed_at: dict[str, int] = {}
    for start in range(0, len(purged_ids), LOOKUP_BATCH):
        removed_at.update(await catalog.purged_at(purged_ids[start : start + LOOKUP_BATCH]))
    n = len(catalogue)
    combined = np.concatenate([catalogue.phashes, np.array([purged[m] for m in purged_ids], dtype=np.uint64)])
    # For each source of purging, the time an image must have come in after to be purged for it. Added is in whole
    # seconds: an image added in the second of the removal is kept (losing a picture is the worse mistake).
    after = np.full(combined.size, NEVER, dtype=np.int64)
    after[n:] = np.array([removed_at[m] for m in purged_ids], dtype=np.int64)
    after[np.array(catalogue.banned, dtype=np.int64)] = ALWAYS  # purged now: every variant goes with it
    added = np.concatenate([catalogue.added, np.zeros(len(purged_ids), dtype=np.int64)])
    symmetry = _symmetry_rows(catalogue, purged_ids, await PURGED.scan_symmetry(catalog.redis))
    pairs = await asyncio.to_thread(variant_pairs, combined, catalog.distance, "auto", None, None, symmetry)
    found: set[int] = set()
    for image, source in ((pairs[:, 0], pairs[:, 1]), (pairs[:, 1], pairs[:, 0])):
        hit = (image < n) & (after[image] == NEVER) & (added[image] > after[source])
        found.update(int(i) for i in image[hit])
    return found
