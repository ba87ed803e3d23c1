"""Rehash benchmark: what `paktum rehash` costs per image, beside the hasher taking the same files in.

The pictures are bench/variants.py's sample (Debian wallpapers and clip art, bench/.corpus), copied into a
folder and imported as `paktum import` does, into a real Redis (the embedded one) and the SQLite index, by the
real hasher (its decode pool, PAKTUM_HASHER_WORKERS processes): that is the peer, timed. Then every image is
made to look hashed by a hasher before alternates, symmetric hashes and signatures (the plain pHash alone, in
the registry and the index), and the rehash is timed twice: rewriting every image, and again with nothing left
to rewrite (decoding every file all the same). Wall-clock seconds, both on the same pool, in this one process; and what
a million images would take at that rate.

    make bench-rehash                   # or: .venv/bin/python bench/rehash.py --help
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from variants import HERE, sample_pictures

from paktum_cli.embedded_redis import EmbeddedRedis
from paktum_common.local_roots import allow_root
from paktum_common.redis_client import connect
from paktum_common.registry import IMAGES
from paktum_common.search import open_search
from paktum_common.settings import Settings
from paktum_common.store import ImageStore
from paktum_hasher.main import new_worker
from paktum_hasher.rehash import Rehasher, RehashSummary
from paktum_scraper.local import ImportReport, local_posts

MILLION = 1_000_000


async def measure(folder: Path, data_dir: Path, redis_url: str, workers: int) -> None:
    settings = Settings(data_dir=data_dir, redis_url=redis_url, hasher_workers=workers, hasher_batch_size=50)
    data_dir.mkdir(parents=True, exist_ok=True)
    allow_root(settings, folder)  # as `paktum import` lets the hashers read the folder
    redis = connect(redis_url)
    search = open_search(settings)
    worker = new_worker(settings, redis, search, ImageStore.from_settings(settings))
    try:
        started = time.perf_counter()
        report = ImportReport()
        await worker.queue.publish_posts(local_posts(folder, ["bench"], None, report))
        await worker.run(until_idle=True)
        ingest = time.perf_counter() - started
        registered = await IMAGES.scan(redis)
        documents = await search.get_documents(list(registered))
        await IMAGES.replace(redis, {md5: doc.PHash for md5, doc in documents.items()}, {}, {})
        old = {"PHashAlternates": (), "Symmetric": False, "PHashSymmetric": (), "PHashSignature": ""}
        await search.add_documents([doc.model_copy(update=old) for doc in documents.values()])
        rehasher = Rehasher(settings, redis, worker.ingestor.catalog, worker.ingestor.pool)
        runs: list[tuple[str, RehashSummary]] = [
            ("rehash, every image rewritten", await rehasher.run(restart=True)),
            ("rehash, nothing to rewrite", await rehasher.run(restart=True)),
        ]
    finally:
        worker.ingestor.pool.shutdown()
        await search.close()
        await redis.aclose()
    images = len(registered)
    print(f"{images} images indexed of {report.found} files, {workers} decode processes\n")
    print(f"{'run':<32} {'seconds':>8} {'images/s':>9} {'vs ingest':>9} {'1M images':>10}  counts")
    print(
        f"{'hasher ingest (the peer)':<32} {ingest:>8.1f} {images / ingest:>9.1f} {1.0:>8.2f}x {hours(ingest, images)}"
    )
    for name, summary in runs:
        rate = summary.images / summary.seconds
        ratio = ingest / summary.seconds * summary.images / images
        took = hours(summary.seconds, summary.images)
        counts = f"changed {summary.changed}, unchanged {summary.unchanged}, unreadable {summary.unreadable}"
        print(f"{name:<32} {summary.seconds:>8.1f} {rate:>9.1f} {ratio:>8.2f}x {took}  {counts}")


def hours(seconds: float, images: int) -> str:
    return f"{seconds / images * MILLION / 3600:>8.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=300, help="pictures of the variant sample to use (default 300)")
    parser.add_argument("--workers", type=int, default=2, help="decode processes (PAKTUM_HASHER_WORKERS, default 2)")
    args = parser.parse_args()
    samples = sample_pictures(HERE / ".corpus")[: args.limit]
    with tempfile.TemporaryDirectory(prefix="paktum-bench-rehash-") as scratch:
        root = Path(scratch)
        folder = root / "in"
        folder.mkdir()
        for index, sample in enumerate(samples):
            source = HERE / ".corpus" / sample.path
            shutil.copyfile(source, folder / f"{index:04d}{source.suffix}")
        server = EmbeddedRedis(root / "redis").start()
        try:
            asyncio.run(measure(folder, root / "data", server.url, args.workers))
        finally:
            server.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
