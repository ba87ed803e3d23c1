"""Last-run figures of short-lived jobs (cleanup, scraper), kept in Redis and exported by the api's /metrics.

A CronJob pod is gone before Prometheus could scrape it. Instead of a Pushgateway (one more component to run,
secure and keep alive), each job writes its final figures to Redis, which every deployment already has, and the
api exports them on every scrape. The figures survive api restarts and work the same under `paktum up`.

Exported, for a job named `cleanup` recording the figure `variant_groups`:
    paktum_cleanup_last_run_variant_groups            the figure, as the last run left it (a gauge)
    paktum_cleanup_last_run_timestamp_seconds         when the last run finished
    paktum_cleanup_last_run_duration_seconds          how long it took
    paktum_cleanup_last_run_success                   1 if it succeeded, else 0
    paktum_cleanup_last_success_timestamp_seconds     when a run last succeeded (kept across failed runs)
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from paktum_common import keys

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class JobFigure:
    """One number a job run ends with, e.g. JobFigure("posts_published", 120, {"source": "gelbooru"})."""

    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobRun:
    job: str
    finished_at: float
    duration_seconds: float
    succeeded: bool
    last_success_at: float | None
    figures: tuple[JobFigure, ...]


def _check_name(kind: str, name: str) -> None:
    # These become Prometheus metric and label names; a bad one would break every later scrape, so refuse it here.
    if not _NAME.fullmatch(name):
        raise ValueError(f"{kind} {name!r} must match {_NAME.pattern}")


async def record_job_run(
    redis: Redis,
    job: str,
    figures: list[JobFigure],
    *,
    succeeded: bool,
    started_at: float,
    finished_at: float | None = None,
) -> None:
    """Store a job run's final figures, replacing the previous run's (call once, when the run ends)."""
    _check_name("job name", job)
    for figure in figures:
        _check_name("figure name", figure.name)
        for label in figure.labels:
            _check_name("label name", label)
    finished = time.time() if finished_at is None else finished_at
    fields: dict[FieldT, EncodableT] = {
        "finished_at": repr(finished),
        "duration_seconds": repr(max(0.0, finished - started_at)),
        "succeeded": "1" if succeeded else "0",
        "figures": json.dumps([[f.name, dict(f.labels), float(f.value)] for f in figures]),
    }
    if succeeded:
        fields["last_success_at"] = repr(finished)
    key = keys.JOB_PREFIX + job
    async with redis.pipeline(transaction=True) as pipe:
        # Figures of the previous run must not linger beside this run's: replace all but last_success_at.
        pipe.hdel(key, "finished_at", "duration_seconds", "succeeded", "figures")
        pipe.hset(key, mapping=fields)
        pipe.sadd(keys.JOBS, job)
        await pipe.execute()


async def read_job_runs(redis: Redis) -> list[JobRun]:
    """Every job's last run, sorted by job name."""
    runs: list[JobRun] = []
    for raw_job in sorted(await redis.smembers(keys.JOBS)):
        job = raw_job.decode() if isinstance(raw_job, bytes) else str(raw_job)
        data = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in (await redis.hgetall(keys.JOB_PREFIX + job)).items()
        }
        if "finished_at" not in data:
            continue
        runs.append(
            JobRun(
                job=job,
                finished_at=float(data["finished_at"]),
                duration_seconds=float(data.get("duration_seconds", 0.0)),
                succeeded=data.get("succeeded") == "1",
                last_success_at=float(data["last_success_at"]) if "last_success_at" in data else None,
                figures=tuple(JobFigure(n, float(v), labels) for n, labels, v in json.loads(data.get("figures", "[]"))),
            )
        )
    return runs


class JobStatsCollector:
    """A Prometheus collector over the last snapshot read from Redis; `refresh` before each exposition."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.runs: list[JobRun] = []
        if registry is not None:
            registry.register(self)

    async def refresh(self, redis: Redis) -> None:
        self.runs = await read_job_runs(redis)

    def collect(self) -> Iterator[Metric]:
        for run in self.runs:
            prefix = f"paktum_{run.job}_last_run"
            yield _gauge(f"{prefix}_timestamp_seconds", "When the last run finished (UNIX seconds).", run.finished_at)
            yield _gauge(f"{prefix}_duration_seconds", "How long the last run took.", run.duration_seconds)
            yield _gauge(f"{prefix}_success", "1 if the last run succeeded, else 0.", 1.0 if run.succeeded else 0.0)
            if run.last_success_at is not None:
                yield _gauge(
                    f"paktum_{run.job}_last_success_timestamp_seconds",
                    "When a run last succeeded (UNIX seconds).",
                    run.last_success_at,
                )
            by_name: dict[str, list[JobFigure]] = {}
            for figure in run.figures:
                by_name.setdefault(figure.name, []).append(figure)
            for name, figures in sorted(by_name.items()):
                label_names = sorted({label for f in figures for label in f.labels})
                family = GaugeMetricFamily(
                    f"{prefix}_{name}", f"{name} at the end of the last run.", labels=label_names
                )
                for figure in figures:
                    family.add_metric([figure.labels.get(label, "") for label in label_names], figure.value)
                yield family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)
