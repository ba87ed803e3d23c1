"""Consistency sweep: files, index entries and pHash registry entries that have lost their counterpart.

It finds; the catalog repairs (its removal path, its registration), so a repair is what a removal would do."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from paktum_cleanup.catalogue import Catalogue
from paktum_cleanup.progress import Progress
from paktum_cleanup.variants import simhash_rows
from paktum_common.catalog import BATCH, Catalog
from paktum_common.phash import ALL_SLOTS, PRIMARY_SLOTS
from paktum_common.registry import IMAGES
from paktum_common.store import SMALL, ImageStore


@dataclass
class SweepReport:
    orphan_files: list[str] = field(default_factory=list)  # "images/<name>", "thumbnails/[small/]<name>" of no document
    missing_files: list[str] = field(default_factory=list)  # IDs of documents whose image file is gone
    orphan_registry: list[str] = field(default_factory=list)  # pHash registry entries with no document
    unregistered: list[str] = field(default_factory=list)  # documents missing from the pHash registry
    repaired: bool = False
    simhashes_entered: int = 0  # registered images whose SimHash entry was missing or stale (always entered)

    @property
    def problems(self) -> int:
        return len(self.orphan_files) + len(self.missing_files) + len(self.orphan_registry) + len(self.unregistered)


T = TypeVar("T")
IMAGES_DIR = "images"
THUMBNAILS_DIR = "thumbnails"
SMALL_THUMBNAILS_DIR = f"{THUMBNAILS_DIR}/{SMALL}"


def _batches(items: list[T]) -> list[list[T]]:
    return [items[start : start + BATCH] for start in range(0, len(items), BATCH)]


def _other_backgrounds(catalogue: Catalogue, gone: set[str]) -> list[tuple[str, int]]:
    """(md5, pHash on its other background) of every transparent image that is not symmetric."""
    if catalogue.alt_starts.size != len(catalogue) + 1:
        return []
    symmetric = catalogue.symmetric if catalogue.symmetric.size == len(catalogue) else np.zeros(len(catalogue), bool)
    transparent = np.flatnonzero((np.diff(catalogue.alt_starts) == ALL_SLOTS) & ~symmetric)
    values = catalogue.alt_values[catalogue.alt_starts[transparent] + PRIMARY_SLOTS]
    found = ((catalogue.ids[i], int(v)) for i, v in zip(transparent, values, strict=True))
    return [(md5, value) for md5, value in found if md5 not in gone]


def _simhashes(catalogue: Catalogue, gone: set[str]) -> dict[str, int]:
    """md5 -> SimHash of every image the registry's SimHash table should hold (paktum_cleanup.variants
    .simhash_rows)."""
    signatures = catalogue.signature_rows()
    if signatures is None:
        return {}
    positions, codes = simhash_rows(signatures, catalogue.symmetry_rows())
    found = ((catalogue.ids[i], int(code)) for i, code in zip(positions.tolist(), codes, strict=True))
    return {md5: code for md5, code in found if md5 not in gone}


def _md5(filename: str) -> str:
    return filename.partition(".")[0]


def _old_files(folder: Path, grace_seconds: int) -> list[str]:
    # The hasher stores the file before it indexes the document: a young file may simply be in flight.
    cutoff = time.time() - grace_seconds
    names: list[str] = []
    for entry in folder.iterdir() if folder.is_dir() else []:
        if ImageStore.is_valid_name(entry.name) and entry.is_file() and entry.stat().st_mtime < cutoff:
            names.append(entry.name)
    return names


async def sweep(
    catalog: Catalog,
    catalogue: Catalogue,
    grace_seconds: int,
    repair: bool,
    progress: Progress,
) -> tuple[Catalogue, SweepReport]:
    """Find (and with `repair`, fix) inconsistencies; returns the catalogue without removed documents."""
    report = SweepReport(repaired=repair)
    redis, search, store = catalog.redis, catalog.search, catalog.store
    progress.start("sweep", 4)
    indexed = dict(zip(catalogue.ids, catalogue.filenames, strict=True))
    images = await asyncio.to_thread(_old_files, store.images_dir, grace_seconds)
    thumbnails = await asyncio.to_thread(_old_files, store.thumbnails_dir, grace_seconds)
    small = await asyncio.to_thread(_old_files, store.thumbnails_dir / SMALL, grace_seconds)
    progress.advance()
    on_disk = set(await asyncio.to_thread(lambda: [p.name for p in store.images_dir.iterdir()]))
    candidates = [(IMAGES_DIR, n) for n in images if _md5(n) not in indexed]
    candidates += [(THUMBNAILS_DIR, n) for n in thumbnails if _md5(n) not in indexed]
    candidates += [(SMALL_THUMBNAILS_DIR, n) for n in small if _md5(n) not in indexed]
    # A document indexed since the scan started owns its file: ask the index again before calling it orphan.
    recent = await search.get_documents(sorted({_md5(n) for _, n in candidates}))
    report.orphan_files = sorted(f"{kind}/{n}" for kind, n in candidates if _md5(n) not in recent)
    report.missing_files = sorted(md5 for md5, filename in indexed.items() if filename not in on_disk)
    progress.advance()
    registry = await IMAGES.scan(redis)
    strays = [md5 for md5 in registry if md5 not in indexed]
    recent = await search.get_documents(strays)
    report.orphan_registry = sorted(md5 for md5 in strays if md5 not in recent)
    phash_of = dict(zip(catalogue.ids, (int(h) for h in catalogue.phashes), strict=True))
    report.unregistered = sorted(md5 for md5, ph in phash_of.items() if registry.get(md5) != ph)
    # SimHashes of images registered before the table existed: entered whatever `repair` says, as the regroup
    # rewrites the groups (an image registered below gets its own there).
    entered = await IMAGES.scan_simhashes(redis)
    unregistered = set(report.unregistered)
    stale = {
        md5: code
        for md5, code in _simhashes(catalogue, set(report.missing_files)).items()
        if entered.get(md5) != code and md5 not in unregistered
    }
    for pairs in _batches(list(stale.items())):
        report.simhashes_entered += await IMAGES.add_simhashes(redis, dict(pairs), entered)
    progress.advance()
    if repair:
        # Files of no document and registry entries of no document: what a removal cut short leaves.
        leftovers = sorted(
            {_md5(orphan.rpartition("/")[2]) for orphan in report.orphan_files} | set(report.orphan_registry)
        )
        for batch in _batches(leftovers):
            await catalog.remove_traces(batch, reason="sweep: no document")
        # Documents whose file is gone: nothing to serve, so the image is removed (not banned: it may come back).
        for batch in _batches(report.missing_files):
            await catalog.remove(batch, ban=False, reason="sweep: file missing")
        await catalog.register_only({md5: phash_of[md5] for md5 in report.unregistered})
        # Transparent images registered before the other-background table existed (idempotent for the rest).
        for pairs in _batches(_other_backgrounds(catalogue, set(report.missing_files))):
            await IMAGES.add_other_backgrounds(redis, dict(pairs))
        catalogue = catalogue.without(report.missing_files)
    progress.advance()
    progress.finish()
    return catalogue, report
