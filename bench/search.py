"""Search benchmark: the embedded backend (SQLite + in-memory tag bitmaps) on a generated index, beside a peer.

Run with `make bench-search` (or `.venv/bin/python bench/search.py --images N`). The index is built once
under bench/.corpus/ (a fixed seed, so every run measures the same data) and reused by later runs; the
first build prints the indexing rate. The peer is Tantivy (bench/search_peer.py, the `bench` dependency
group) given the same documents and queries in the same run; the last column is ours/peer per query.

Also printed: the time a fresh process takes to load the index (its first search), the memory the index
takes in this process, and how long a document written by another process takes to become searchable here.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from paktum_api.tags import tag_counts
from paktum_common.contracts import ImageDocument, Rating
from paktum_common.search import parse_query
from paktum_common.search.sqlite import SqliteSearch

T = TypeVar("T")
CORPUS = Path(__file__).parent / ".corpus"
sys.path.insert(0, str(Path(__file__).parent))  # the peer (search_peer.py) lives beside this file
VOCABULARY = 5_000
TAGS_PER_IMAGE = (5, 25)
QUERIES = [
    "tag_0",  # the most common tag (Zipf: about one image in ten)
    "tag_50",
    "tag_4000",  # a rare tag
    "tag_0 tag_1",
    "tag_0 -tag_1",
    "~tag_10 ~tag_20 ~tag_30",
    "tag_1*",
    "tag_0 rating:s,q",
    "tag_2 width:>1000",
    "tag_0 order:-added",
    '"tag 7"',
    "",  # everything, random order
]


def corpus_documents(count: int, seed: int = 1) -> list[ImageDocument]:
    rng = random.Random(seed)
    # Zipf-like tag popularity, as on booru sites: a few tags on many images, most on few.
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(VOCABULARY)))
    ratings = list(Rating)
    docs = []
    for n in range(count):
        tags = sorted(
            {f"tag_{i}" for i in rng.choices(range(VOCABULARY), cum_weights=cumulative, k=rng.randint(*TAGS_PER_IMAGE))}
        )
        md5 = f"{rng.getrandbits(128):032x}"
        docs.append(
            ImageDocument(
                ID=md5, Tags=tags, Tagstring=" ".join(tags),
                Rating=rng.choice(ratings), Added=str(1_600_000_000 + n * 60), PHash=rng.getrandbits(64),
                Size=rng.randint(10_000, 5_000_000), Width=rng.randint(200, 4000), Height=rng.randint(200, 4000),
                Filename=f"{md5}.jpg",
            )
        )  # fmt: skip
    return docs


async def build(path: Path, count: int, docs: list[ImageDocument]) -> None:
    search = SqliteSearch(path)
    if await search.count() != count:
        path.unlink(missing_ok=True)
        await search.close()
        search = SqliteSearch(path)
        print(f"building {count:,} documents in {path} (once) ...", flush=True)
        seconds = await index_all(search, docs)
        print(f"  built in {seconds:.1f} s: {count / seconds:,.0f} documents/s", flush=True)
    await search.close()


async def index_all(search: SqliteSearch, docs: list[ImageDocument], batch: int = 2000) -> float:
    started = time.perf_counter()
    for start in range(0, len(docs), batch):
        await search.add_documents(docs[start : start + batch])
    return time.perf_counter() - started


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _write_one(path: str, tag: str, committed: Any) -> None:
    async def write() -> None:
        search = SqliteSearch(path)
        doc = corpus_documents(1, seed=99)[0].model_copy(update={"ID": "f" * 32, "Tags": [tag], "Tagstring": tag})
        committed.value = time.time()  # before the write: the figure includes the write itself
        await search.add_documents([doc])
        await search.close()

    asyncio.run(write())


async def freshness(path: Path, search: SqliteSearch) -> float:
    """Milliseconds from another process starting to write a document to this one finding it."""
    tag = f"fresh_{os.getpid()}"
    context = multiprocessing.get_context("spawn")
    committed = context.Value("d", 0.0)
    writer = context.Process(target=_write_one, args=(str(path), tag, committed))
    writer.start()
    query = parse_query(tag)
    while not (await search.search(query, 1)).total:
        await asyncio.sleep(0.001)
    found = time.time()
    writer.join()
    await search.delete_documents(["f" * 32])
    return (found - committed.value) * 1000


COLUMNS = f"{'median':>7} {'p95':>7} {'max':>7}  {'peer p50':>8} {'peer p95':>8} {'p95 ratio':>9}"


async def measure(call: Callable[[], Awaitable[T]], repeat: int) -> tuple[list[float], T]:
    """Milliseconds of each of `repeat` calls, and the last answer."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = await call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, answer


def measure_peer(call: Callable[[], Any], repeat: int, peer: Any) -> tuple[list[float], Any]:
    if peer is None:
        return [], (None, None)
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, answer


def row(label: str, count: str, ours: list[float], theirs: list[float]) -> str:
    median, p95 = percentiles(ours)
    line = f"{label:<26} {count:>9} {median:>7.1f} {p95:>7.1f} {max(ours):>7.1f}"
    if theirs:
        peer_median, peer_p95 = percentiles(theirs)
        line += f"  {peer_median:>8.1f} {peer_p95:>8.1f} {p95 / peer_p95:>9.2f}"
    return line


def percentiles(timings: list[float]) -> tuple[float, float]:
    timings = sorted(timings)
    return statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.95))]


def open_peer(docs: list[ImageDocument], count: int) -> Any:
    try:
        from search_peer import TantivyPeer  # bench/search_peer.py, which needs the bench group
    except ImportError as exc:
        print(f"(no peer: {exc}; `uv sync --group bench` installs tantivy)")
        return None
    peer = TantivyPeer(CORPUS / f"tantivy-{count}")
    seconds = peer.build(docs)
    if seconds:
        print(f"peer: built {count:,} documents in {seconds:.1f} s: {count / seconds:,.0f} documents/s", flush=True)
    return peer


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--index-sample", type=int, default=50_000, help="documents indexed afresh each run")
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    CORPUS.mkdir(exist_ok=True)
    path = CORPUS / f"search-{args.images}.sqlite3"
    docs = corpus_documents(args.images)
    await build(path, args.images, docs)
    peer = None if args.no_peer else open_peer(docs, args.images)

    with tempfile.TemporaryDirectory() as scratch:
        sample = SqliteSearch(Path(scratch) / "sample.sqlite3")
        seconds = await index_all(sample, docs[: args.index_sample], batch=1000)
        await sample.close()
    print(f"indexing into a new index: {args.index_sample:,} documents, batches of 1,000: "
          f"{args.index_sample / seconds:,.0f} documents/s")  # fmt: skip
    # The same into the full index (its ID index no longer fits a small cache), then taken out again.
    extra = [
        doc.model_copy(update={"ID": f"e{n:031x}", "Filename": f"e{n:031x}.jpg"})
        for n, doc in enumerate(docs[: args.index_sample])
    ]
    full = SqliteSearch(path)
    seconds = await index_all(full, extra, batch=1000)
    for start in range(0, len(extra), 1000):
        await full.delete_documents([doc.ID for doc in extra[start : start + 1000]])
    await full.close()
    print(f"indexing into the {args.images:,}-image index: {len(extra):,} more documents, batches of 1,000: "
          f"{len(extra) / seconds:,.0f} documents/s")  # fmt: skip
    del docs

    search = SqliteSearch(path)
    before = rss_mib()
    started = time.perf_counter()
    await search.warm()  # what the api does as it starts
    print(
        f"loading the index in a fresh process (as the api does at start): {time.perf_counter() - started:.2f} s, "
        f"{rss_mib() - before:,.0f} MiB resident"
    )
    print(
        f"a document another process writes is found here {await freshness(path, search):.1f} ms after the write began"
    )

    print(f"\n{args.images:,} images, limit {args.limit}, {args.repeat} runs per query (milliseconds)")
    print(f"{'query':<26} {'hits':>9} {COLUMNS}")
    for text in QUERIES:
        query = parse_query(text)
        ours, page = await measure(lambda q=query: search.search(q, args.limit), args.repeat)
        theirs, (peer_total, _ids) = measure_peer(lambda q=query: peer.search(q, args.limit), args.repeat, peer)
        same = "" if peer is None or peer_total == page.total else f"  (peer counted {peer_total:,})"
        print(row(text or "(all)", f"{page.total:,}", ours, theirs) + same)

    print(f"\n{'tag autocomplete (prefix)':<26} {'tags':>9} {COLUMNS}")
    for prefix in ("tag_", "tag_1", "tag_12", "tag_123"):
        ours, found = await measure(lambda p=prefix: tag_counts(search, p, 10), args.repeat)
        theirs, _ = measure_peer(lambda p=prefix: peer.tags(p, 10), args.repeat, peer)
        print(row(prefix, str(len(found)), ours, theirs))
    await search.close()


if __name__ == "__main__":
    asyncio.run(main())
