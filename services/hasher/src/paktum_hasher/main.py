"""paktum-hasher entry point: read settings, wire the pieces, run the loop until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

from paktum_common.log import log_event, setup_logging
from paktum_common.metrics import serve_metrics
from paktum_common.queue import IngestQueue
from paktum_common.redis_server import connect
from paktum_common.search import open_search
from paktum_common.settings import Settings, load_settings
from paktum_common.store import ImageStore
from paktum_hasher.ingest import Ingestor
from paktum_hasher.worker import HasherWorker

log = logging.getLogger("paktum.hasher")


def _ignore_interrupts() -> None:
    # Ctrl-C is the parent's to handle: a decode in flight finishes and its result is indexed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def new_decode_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("forkserver"), initializer=_ignore_interrupts
    )


async def run(settings: Settings) -> None:
    assert settings.redis_url
    redis = connect(settings.redis_url)
    search = open_search(settings)
    store = ImageStore.from_settings(settings)
    pool = new_decode_pool(settings.hasher_workers)
    worker = HasherWorker(
        IngestQueue(redis, settings),
        search,
        Ingestor(settings, store, pool, redis),
        settings.hasher_batch_size,
        lambda: new_decode_pool(settings.hasher_workers),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    try:
        await worker.run()
    finally:
        worker.ingestor.pool.shutdown(wait=True)
        await search.close()
        await redis.aclose()
        log_event(log, logging.INFO, "hasher stopped")


def main() -> None:
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    if not settings.redis_url:
        sys.exit("paktum-hasher: PAKTUM_REDIS_URL is not set (`paktum up` starts Redis and sets it for you)")
    serve_metrics(settings.metrics_port)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
