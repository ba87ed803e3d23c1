"""Random order is a uniform sample of all hits, far past the first thousand, on the real SQLite backend."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from paktum_common.contracts import ImageDocument, Rating
from paktum_common.search import Order, SearchQuery
from paktum_common.search.sqlite import SqliteSearch

COUNT = 3000
BUCKETS = 10
# Chi-square with 9 degrees of freedom exceeds this with probability 0.001 when the sample is uniform.
CHI2_CRITICAL = 27.88


def document(n: int) -> ImageDocument:
    tags = ["every", "third"] if n % 3 == 0 else ["every"]
    md5 = f"{n:032x}"
    return ImageDocument(
        ID=md5, Tags=tags, Tagstring=" ".join(tags), Rating=Rating.safe,
        Added=str(1_700_000_000 + n), PHash=n, Size=n + 1, Width=100, Height=100, Filename=f"{md5}.png",
    )  # fmt: skip


@pytest.fixture
async def index(tmp_path: Path) -> SqliteSearch:
    search = SqliteSearch(tmp_path / "search.sqlite3")
    docs = [document(n) for n in range(COUNT)]
    for start in range(0, COUNT, 500):
        await search.add_documents(docs[start : start + 500])
    return search


def chi_square(counts: Counter[int], buckets: int) -> float:
    total = sum(counts.values())
    expected = total / buckets
    return sum((counts.get(b, 0) - expected) ** 2 / expected for b in range(buckets))


@pytest.mark.parametrize(("tag", "hits"), [("every", COUNT), ("third", COUNT // 3)])
async def test_random_order_is_uniform_over_all_hits(index: SqliteSearch, tag: str, hits: int) -> None:
    random.seed(20261125)  # reproducible; the bound below still fails for any sampler that favours a region
    ranks = {document(n).ID: rank for rank, n in enumerate(n for n in range(COUNT) if tag == "every" or n % 3 == 0)}
    positions: Counter[int] = Counter()
    draws = 0
    try:
        for _ in range(600):
            page = await index.search(SearchQuery(all_tags=(tag,), order=Order.random), 20)
            assert page.total == hits and len(page.hits) == 20 == len({d.ID for d in page.hits})
            for doc in page.hits:
                positions[ranks[doc.ID] * BUCKETS // hits] += 1
                draws += 1
    finally:
        await index.close()
    assert chi_square(positions, BUCKETS) < CHI2_CRITICAL, positions
    past_first_thousand = sum(n for bucket, n in positions.items() if bucket * hits // BUCKETS >= 1000)
    if hits > 1000:
        assert past_first_thousand > draws * 0.5  # two thirds of `every` lies past rank 1000
