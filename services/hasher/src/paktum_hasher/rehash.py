"""Rehash: every stored image hashed again from its stored file, by the hasher's rules of today.

The hash rules change (mirror and turn alternates, the other-background hash, symmetric and radial hashes), and
an image keeps the hashes of the hasher that took it in: until it is hashed again, it is matched by those (an
image without alternates finds no mirrored copy). A rehash reads each registered image's stored file, decodes it
as the hasher does (the same settings, decode pool and budgets: paktum_hasher.decode.decode_image), and where any
of its hashes differs from what the registry or the index holds, replaces them (Catalog.replace_hashes). Variant
groups follow at the next cleanup run.

It walks the registry with HSCAN, `batch` images at a time, and keeps its cursor in Redis (keys.REHASH_CURSOR)
after each batch: stopped or killed, it goes on from there the next time; it starts over once it has finished,
or when asked to. A file that is missing, larger than PAKTUM_MAX_FILE_BYTES or that no longer decodes is
counted and logged, and its image left as it is: a rehash never removes anything (the cleanup's sweep decides
about missing files). Only a process holding the hasher's decoder can run it: `paktum rehash` on one machine,
`paktum-hasher --rehash` as a Kubernetes Job (the chart's rehash CronJob, suspended).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, fields

from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.catalog import Catalog
from paktum_common.contracts import VIDEO_EXTENSIONS, ImageDocument, extension_of
from paktum_common.dct_hash import PictureHashes
from paktum_common.errors import BadImageError
from paktum_common.jobstats import JobFigure, record_job_run
from paktum_common.log import log_event
from paktum_common.redis_client import connect
from paktum_common.registry import IMAGES
from paktum_common.search import open_search
from paktum_common.settings import Settings
from paktum_common.store import ImageStore
from paktum_hasher.fetch import VideoSkippedError, media_of
from paktum_hasher.ingest import decoder
from paktum_hasher.pool import new_decode_pool

log = logging.getLogger("paktum.hasher")

BATCH = 200  # images per HSCAN step and per write; a batch's files are decoded in parallel on the pool
JOB = "rehash"


@dataclass
class RehashSummary:
    """What one run did. `finished`: it reached the end of the registry (the next run starts over)."""

    images: int = 0  # registered images looked at
    changed: int = 0  # their hashes rewritten
    unchanged: int = 0
    unindexed: int = 0  # registered without a document (the sweep's to repair)
    missing: int = 0  # no stored file
    too_large: int = 0  # stored file over PAKTUM_MAX_FILE_BYTES
    unreadable: int = 0  # no longer decodes (or over its decode budgets)
    videos_skipped: int = 0  # no ffmpeg here to take the first frame
    finished: bool = False
    seconds: float = 0.0

    def line(self) -> str:
        counts = ", ".join(f"{f.name.replace('_', ' ')} {getattr(self, f.name)}" for f in fields(self)[1:8])
        state = "finished" if self.finished else "stopped (the next run goes on from here)"
        return f"{self.images} images in {self.seconds:.1f} s: {counts}; {state}"


@dataclass
class _Outcome:
    hashes: PictureHashes | None = None
    skip: str = ""  # the RehashSummary counter to add to when there are no hashes
    reason: str = ""


@dataclass
class Rehasher:
    settings: Settings
    redis: Redis
    catalog: Catalog
    pool: Executor
    batch: int = BATCH
    report: Callable[[RehashSummary], None] = field(default=lambda summary: None)

    def __post_init__(self) -> None:
        self._reading = asyncio.Semaphore(self.settings.hasher_workers)

    async def run(self, restart: bool = False, max_batches: int | None = None) -> RehashSummary:
        """Hash every registered image again, from the saved cursor (or the start); `max_batches` stops early."""
        started_at, started = time.time(), time.perf_counter()
        summary = RehashSummary()
        cursor = 0 if restart else int(await self.redis.get(keys.REHASH_CURSOR) or 0)
        succeeded = False
        try:
            batches = 0
            while max_batches is None or batches < max_batches:
                cursor, found = await self.redis.hscan(keys.PHASHES, cursor, count=self.batch)
                ids = [str(md5) for md5 in found]  # COUNT is a hint: a small hash comes back whole
                for start in range(0, len(ids), self.batch):
                    await self._rehash(ids[start : start + self.batch], summary)
                batches += 1
                summary.seconds = time.perf_counter() - started
                if cursor == 0:
                    summary.finished = True
                    await self.redis.delete(keys.REHASH_CURSOR)
                    break
                await self.redis.set(keys.REHASH_CURSOR, cursor)
                self.report(summary)
            succeeded = True
        finally:
            summary.seconds = time.perf_counter() - started
            figures = [JobFigure(f.name, float(getattr(summary, f.name))) for f in fields(summary)[:8]]
            try:
                await record_job_run(self.redis, JOB, figures, succeeded=succeeded, started_at=started_at)
            except Exception:  # Redis away: the run's own error is the one to see
                if succeeded:
                    raise
        log_event(log, logging.INFO, "rehash run ended", **{f.name: getattr(summary, f.name) for f in fields(summary)})
        return summary

    async def _rehash(self, ids: list[str], summary: RehashSummary) -> None:
        summary.images += len(ids)
        documents = await self.catalog.search.get_documents(ids)
        summary.unindexed += len(ids) - len(documents)
        outcomes = await asyncio.gather(*(self._hash(doc) for doc in documents.values()))
        hashed: dict[str, PictureHashes] = {}
        for doc, outcome in zip(documents.values(), outcomes, strict=True):
            if outcome.hashes is None:
                setattr(summary, outcome.skip, getattr(summary, outcome.skip) + 1)
                log_event(log, logging.WARNING, "rehash left an image as it was", md5=doc.ID, reason=outcome.reason)
            else:
                hashed[doc.ID] = outcome.hashes
        stale = await self._stale(hashed, documents)
        changed = await self.catalog.replace_hashes(stale)
        summary.changed += len(changed)
        summary.unchanged += len(hashed) - len(stale)

    async def _hash(self, doc: ImageDocument) -> _Outcome:
        async with self._reading:  # a file is read only when a decode slot is free for it: bounded memory
            return await self._read_and_decode(doc)

    async def _read_and_decode(self, doc: ImageDocument) -> _Outcome:
        path = self.catalog.store.image_path(doc.Filename)
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
        except OSError as exc:
            return _Outcome(skip="missing", reason=f"no stored file {doc.Filename}: {exc.strerror}")
        if size > self.settings.max_file_bytes:
            return _Outcome(skip="too_large", reason=f"{size} bytes, over PAKTUM_MAX_FILE_BYTES")
        try:
            data = await asyncio.to_thread(path.read_bytes)
            named = extension_of(doc.Filename)
            media = await media_of(data, named if named in VIDEO_EXTENSIONS else None)
            decode = decoder(self.settings, media.picture, small_thumbnail=False)
            decoded = await asyncio.get_running_loop().run_in_executor(self.pool, decode)
        except VideoSkippedError as exc:
            return _Outcome(skip="videos_skipped", reason=str(exc))
        except BadImageError as exc:
            return _Outcome(skip="unreadable", reason=str(exc))
        except OSError as exc:
            return _Outcome(skip="missing", reason=f"cannot read {doc.Filename}: {exc.strerror}")
        hashes = decoded.hashes
        return _Outcome(hashes if self.settings.variant_transforms else hashes._replace(alternates=()))

    async def _stale(
        self, hashed: dict[str, PictureHashes], documents: dict[str, ImageDocument]
    ) -> dict[str, PictureHashes]:
        """The images whose new hashes differ from the registry's or from their document's."""
        phashes, alternates, shapes = await IMAGES.stored(self.redis, list(hashed))
        stale: dict[str, PictureHashes] = {}
        for md5, new in hashed.items():
            doc = documents[md5]
            registered = (phashes.get(md5), alternates.get(md5, ()), shapes.get(md5))
            indexed = (doc.PHash, doc.PHashAlternates, doc.symmetry)
            wanted = (new.plain, new.alternates, new.symmetry)
            if registered != wanted or indexed != wanted or doc.signature != new.signature:
                stale[md5] = new
        return stale


async def rehash_once(
    settings: Settings, restart: bool = False, report: Callable[[RehashSummary], None] | None = None
) -> RehashSummary:
    """One rehash run wired from settings (Redis, the index, the files, a decode pool), all closed after."""
    assert settings.redis_url
    redis = connect(settings.redis_url)
    search = open_search(settings)
    pool = new_decode_pool(settings)
    try:
        catalog = Catalog.from_settings(settings, redis, search, ImageStore.from_settings(settings))
        rehasher = Rehasher(settings, redis, catalog, pool, report=report or (lambda summary: None))
        return await rehasher.run(restart)
    finally:
        pool.shutdown(wait=True)
        await search.close()
        await redis.aclose()
