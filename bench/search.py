"""Search benchmark: the SQLite backend answering the query language on a generated 100,000-image index.

Run with `make bench-search` (or `.venv/bin/python bench/search.py --images N`). The index is built once
under bench/.corpus/ (a fixed seed, so every run measures the same data) and reused by later runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from pathlib import Path

from paktum_api.tags import tag_counts
from paktum_common.contracts import ImageDocument, Rating
from paktum_common.search import parse_query
from paktum_common.search.sqlite import SqliteSearch

CORPUS = Path(__file__).parent / ".corpus"
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
    weights = [1 / (rank + 1) for rank in range(VOCABULARY)]
    ratings = list(Rating)
    docs = []
    for n in range(count):
        tags = sorted({f"tag_{i}" for i in rng.choices(range(VOCABULARY), weights, k=rng.randint(*TAGS_PER_IMAGE))})
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


async def build(path: Path, count: int) -> SqliteSearch:
    search = SqliteSearch(path)
    have = await search.count()
    if have != count:
        print(f"building {count:,} documents in {path} (once) ...", flush=True)
        started = time.perf_counter()
        docs = corpus_documents(count)
        for start in range(0, count, 2000):
            await search.add_documents(docs[start : start + 2000])
        print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
    return search


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    CORPUS.mkdir(exist_ok=True)
    search = await build(CORPUS / f"search-{args.images}.sqlite3", args.images)
    print(f"{args.images:,} images, limit {args.limit}, {args.repeat} runs per query (milliseconds)")
    print(f"{'query':<28} {'hits':>8} {'median':>8} {'p95':>8} {'max':>8}")
    for text in QUERIES:
        query = parse_query(text)
        timings = []
        total = 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            page = await search.search(query, args.limit)
            timings.append((time.perf_counter() - started) * 1000)
            total = page.total
        timings.sort()
        p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
        print(f"{text or '(all)':<28} {total:>8,} {statistics.median(timings):>8.1f} {p95:>8.1f} {timings[-1]:>8.1f}")
    print(f"\n{'tag autocomplete (prefix)':<28} {'tags':>8} {'median':>8} {'p95':>8} {'max':>8}")
    for prefix in ("tag_", "tag_1", "tag_12", "tag_123"):
        timings = []
        found = 0
        for _ in range(max(3, args.repeat // 5)):
            started = time.perf_counter()
            found = len(await tag_counts(search, prefix, 10))
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
        print(f"{prefix:<28} {found:>8} {statistics.median(timings):>8.1f} {p95:>8.1f} {timings[-1]:>8.1f}")
    await search.close()


if __name__ == "__main__":
    asyncio.run(main())
