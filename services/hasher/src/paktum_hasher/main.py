"""paktum-hasher entry point: read settings, wire the pieces, run the loop until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from redis.asyncio import Redis

from paktum_common.catalog import Catalog
from paktum_common.log import log_event, setup_logging
from paktum_common.metrics import serve_metrics
from paktum_common.queue import IngestQueue
from paktum_common.redis_client import RedisHealth, connect
from paktum_common.search import SearchBackend, open_search
from paktum_common.settings import Settings, load_settings
from paktum_common.store import ImageStore
from paktum_hasher.ingest import Ingestor
from paktum_hasher.pool import new_decode_pool
from paktum_hasher.worker import HasherWorker

log = logging.getLogger("paktum.hasher")


def new_worker(settings: Settings, redis: Redis, search: SearchBackend, store: ImageStore) -> HasherWorker:
    """A hasher wired as the service runs it: its queue (riding out Redis outages), its catalog, a pool of
    decode processes."""
    catalog = Catalog.from_settings(settings, redis, search, store)
    ingestor = Ingestor(settings, catalog, new_decode_pool(settings))
    stopping = asyncio.Event()
    return HasherWorker(
        IngestQueue(redis, settings, health=RedisHealth(redis, "hasher", stopping)),
        ingestor,
        settings.hasher_batch_size,
        stopping=stopping,
    )


async def run(settings: Settings, until_idle: bool = False) -> None:
    assert settings.redis_url
    redis = connect(settings.redis_url)
    search = open_search(settings)
    worker = new_worker(settings, redis, search, ImageStore.from_settings(settings))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    try:
        await worker.run(until_idle=until_idle)
    finally:
        worker.ingestor.pool.shutdown(wait=True)
        await search.close()
        await redis.aclose()
        log_event(log, logging.INFO, "hasher stopped")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="paktum-hasher", description="Hash, thumbnail and index posts from the stream."
    )
    parser.add_argument(
        "--until-idle",
        action="store_true",
        help="leave once the stream is drained (a backlog Job), not at SIGTERM only",
    )
    parser.add_argument(
        "--rehash",
        action="store_true",
        help="hash every stored image again by this version's rules, then leave (a Job; the cleanup regroups)",
    )
    parser.add_argument(
        "--restart", action="store_true", help="with --rehash: from the first image, not where it stopped"
    )
    args = parser.parse_args()
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    if not settings.redis_url:
        sys.exit("paktum-hasher: PAKTUM_REDIS_URL is not set (`paktum up` starts Redis and sets it for you)")
    if args.rehash:
        from paktum_hasher.rehash import rehash_once

        summary = asyncio.run(rehash_once(settings, args.restart))
        print(f"paktum-hasher --rehash: {summary.line()}", flush=True)
        return
    serve_metrics(settings.metrics_port)
    asyncio.run(run(settings, until_idle=args.until_idle))


if __name__ == "__main__":
    main()
