"""One cleanup run: scan, purge, sweep, group, in that order; a failed step stops the run and is reported."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import LockError

from paktum_cleanup.catalogue import Catalogue, load_catalogue
from paktum_cleanup.grouping import GroupReport, regroup_all
from paktum_cleanup.progress import Progress
from paktum_cleanup.purge import PurgeReport, purge
from paktum_cleanup.sweep import SweepReport, sweep
from paktum_cleanup.variants import Method
from paktum_common import keys, metrics
from paktum_common.banned import banned_tags_now
from paktum_common.catalog import Catalog
from paktum_common.errors import PaktumError
from paktum_common.jobstats import JobFigure, record_job_run
from paktum_common.log import log_event
from paktum_common.redis_client import connect
from paktum_common.search import open_search
from paktum_common.settings import Settings
from paktum_common.store import ImageStore

log = logging.getLogger("paktum.cleanup")

LOCK_SECONDS = 120
LOCK_RENEW_SECONDS = 30

RUNS = metrics.counter("cleanup", "runs_total", "Cleanup runs, by outcome.", ("outcome",))
PURGED = metrics.counter("cleanup", "purged_images_total", "Images purged (banned tag or re-upload of one).")
GROUPS = metrics.gauge("cleanup", "variant_groups", "Variant groups after the last run.")
LARGEST = metrics.gauge("cleanup", "largest_group_images", "Images in the largest variant group.")
GROUP_SECONDS = metrics.gauge("cleanup", "grouping_seconds", "Pair search and components of the last run.")
RUN_SECONDS = metrics.gauge("cleanup", "run_seconds", "Duration of the last run.")
PROBLEMS = metrics.gauge("cleanup", "sweep_problems", "Inconsistencies the last sweep found, by kind.", ("kind",))


class CleanupBusyError(PaktumError):
    """Another cleanup run holds the lock."""


@dataclass
class RunSummary:
    purge: PurgeReport | None = None
    sweep: SweepReport | None = None
    groups: GroupReport | None = None
    failed_step: str = ""
    error: str = ""
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed_step

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.purge:
            out.append(
                f"purge: {self.purge.total} images purged "
                f"({self.purge.banned_tag} with a banned tag, {self.purge.near_purged} re-uploads of purged images, "
                f"{self.purge.unfinished} removals cut short finished)"
            )
        if self.sweep:
            s = self.sweep
            verb = "repaired" if s.repaired else "found (run with --repair to fix)"
            out.append(
                f"sweep: {len(s.orphan_files)} files without an index entry, {len(s.missing_files)} index entries "
                f"without a file, {len(s.orphan_registry)} pHash registry entries without a document, "
                f"{len(s.unregistered)} documents missing from the registry: {verb}; "
                f"{s.simhashes_entered} SimHashes entered"
            )
        if self.groups:
            g = self.groups
            out.append(
                f"groups: {g.groups} variant groups, largest {g.largest}, {g.grouped_images} images grouped, "
                f"{g.pairs} pairs, {g.seconds:.2f}s ({g.method}); {g.late_linked} late images linked"
            )
        if self.failed_step:
            out.append(f"FAILED at {self.failed_step}: {self.error} (the previous variant groups are unchanged)")
        out.append(f"cleanup {'finished' if self.ok else 'failed'} in {self.seconds:.1f}s")
        return out


def job_figures(summary: RunSummary) -> list[JobFigure]:
    """The run's figures as `paktum_cleanup_last_run_<name>` on the api's /metrics."""
    figures: list[JobFigure] = []
    if summary.purge:
        figures.append(JobFigure("purged_images", summary.purge.banned_tag, {"reason": "banned_tag"}))
        figures.append(JobFigure("purged_images", summary.purge.near_purged, {"reason": "reupload"}))
        figures.append(JobFigure("purged_images", summary.purge.unfinished, {"reason": "unfinished"}))
    if summary.sweep:
        for kind in ("orphan_files", "missing_files", "orphan_registry", "unregistered"):
            figures.append(JobFigure("sweep_problems", len(getattr(summary.sweep, kind)), {"kind": kind}))
    if summary.groups:
        figures += [
            JobFigure("variant_groups", summary.groups.groups),
            JobFigure("largest_group_images", summary.groups.largest),
            JobFigure("grouped_images", summary.groups.grouped_images),
            JobFigure("variant_pairs", summary.groups.pairs),
            JobFigure("grouping_seconds", summary.groups.seconds),
        ]
    return figures


@contextlib.asynccontextmanager
async def cleanup_lock(
    redis: Redis, seconds: float = LOCK_SECONDS, renew_every: float = LOCK_RENEW_SECONDS
) -> AsyncIterator[None]:
    """Hold the run lock, renewing it while the run lives; a killed run's lock lapses within `seconds`."""
    lock = redis.lock(keys.CLEANUP_LOCK, timeout=seconds, blocking=False)
    if not await lock.acquire():
        raise CleanupBusyError("another cleanup run is in progress")

    async def renew() -> None:
        while True:
            await asyncio.sleep(renew_every)
            await lock.reacquire()  # back to the full timeout; raises once the lock is no longer ours

    renewer = asyncio.create_task(renew())
    try:
        yield
    finally:
        renewer.cancel()
        try:
            await renewer
        except asyncio.CancelledError:
            pass
        except LockError as exc:
            # Lapsed (the process stalled past the timeout) and maybe taken: this run overlapped another.
            log_event(log, logging.WARNING, "the cleanup lock was lost during the run", reason=str(exc))
        with contextlib.suppress(LockError):  # lost: someone else's now, not ours to release
            await lock.release()


async def run_cleanup(
    settings: Settings, repair: bool = False, progress: Progress | None = None, method: Method = "auto"
) -> RunSummary:
    assert settings.redis_url, "PAKTUM_REDIS_URL must be set"
    progress = progress or Progress()
    summary = RunSummary()
    started = time.perf_counter()
    started_at = time.time()
    redis = connect(settings.redis_url)
    search = open_search(settings)
    catalog = Catalog.from_settings(settings, redis, search, ImageStore.from_settings(settings))
    step = "lock"
    try:
        async with cleanup_lock(redis):
            step = "banned tags"
            banned = await banned_tags_now(redis, settings)
            step = "scan"
            catalogue: Catalogue = await load_catalogue(search, banned, progress, settings.variant_transforms)
            step = "purge"
            catalogue, summary.purge = await purge(catalog, catalogue, progress)
            PURGED.inc(summary.purge.total)
            step = "sweep"
            catalogue, summary.sweep = await sweep(catalog, catalogue, settings.cleanup_grace_seconds, repair, progress)
            for kind in ("orphan_files", "missing_files", "orphan_registry", "unregistered"):
                PROBLEMS.labels(kind).set(len(getattr(summary.sweep, kind)))
            step = "groups"
            summary.groups = await regroup_all(catalog, catalogue, progress, method)
            GROUPS.set(summary.groups.groups)
            LARGEST.set(summary.groups.largest)
            GROUP_SECONDS.set(summary.groups.seconds)
    except Exception as exc:
        progress.finish()
        summary.failed_step, summary.error = step, f"{type(exc).__name__}: {exc}"
        log_event(log, logging.ERROR, "cleanup step failed", step=step, reason=summary.error)
    finally:
        summary.seconds = time.perf_counter() - started
        try:
            # A CronJob pod is gone before Prometheus scrapes it: the api exports these from Redis.
            await record_job_run(redis, "cleanup", job_figures(summary), succeeded=summary.ok, started_at=started_at)
        except Exception as exc:
            log_event(log, logging.WARNING, "could not record the run's figures", reason=str(exc))
        await search.close()
        await redis.aclose()
    RUN_SECONDS.set(summary.seconds)
    RUNS.labels("ok" if summary.ok else "failed").inc()
    return summary
