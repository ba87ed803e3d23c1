"""bench/search_peer.py answers as the SQLite backend does, so bench/search.py's peer ratio compares like with like.

Tantivy is in the `bench` dependency group (`uv sync --group bench`, which `make bench-search` runs); without it
these tests skip, saying so.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.importorskip(
    "tantivy", reason="tantivy is not installed: `uv sync --group bench` (the bench group) for the peer"
)

from bench.search import QUERIES, corpus_documents
from bench.search_peer import TantivyPeer
from paktum_common.contracts import ImageDocument, Rating
from paktum_common.search import NumericFilter, Order, SearchQuery, parse_query
from paktum_common.search.sqlite import SqliteSearch
from tests.documents import synthetic

CORPUS_SIZE = 3000


@pytest.fixture(scope="module")
def corpus() -> list[ImageDocument]:
    return corpus_documents(CORPUS_SIZE)


@pytest.fixture(scope="module")
def peer(corpus: list[ImageDocument], tmp_path_factory: pytest.TempPathFactory) -> TantivyPeer:
    built = TantivyPeer(tmp_path_factory.mktemp("peer") / "tantivy")
    assert built.build(corpus) > 0 and not built.from_cache
    return built


@pytest.fixture(scope="module")
def sqlite_file(corpus: list[ImageDocument], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "search.sqlite3"

    async def fill() -> None:
        search = SqliteSearch(path)
        await search.add_documents(corpus)
        await search.close()

    asyncio.run(fill())
    return path


@pytest.fixture
async def sqlite(sqlite_file: Path) -> AsyncIterator[SqliteSearch]:
    search = SqliteSearch(sqlite_file)
    yield search
    await search.close()


async def every_hit(search: SqliteSearch, query: SearchQuery) -> set[str]:
    return {doc_id async for page in search.matching_ids(query) for doc_id in page}


EXTRA = [
    "tag_3*",
    "-tag_0* tag_5",
    "tag_1 -tag_2 -tag_3",
    "~tag_0 ~tag_4999 rating:e",
    "height:<=300 width:>=3900",
    "size:<20000",
    "size:=4999999",
    f"added:>{1_600_000_000 + 60 * 2000}",
    '"tag 7" tag_0',
    '"7 tag"',  # a phrase across two tags
    "nothing_has_this",
]


@pytest.mark.parametrize("text", QUERIES + EXTRA)
async def test_the_peer_counts_and_samples_every_query_as_sqlite_does(
    peer: TantivyPeer, sqlite: SqliteSearch, text: str
) -> None:
    query = parse_query(text)
    hits = await every_hit(sqlite, query)
    total, ids = peer.search(query, 50)
    assert total == (await sqlite.search(query, 1)).total == len(hits)
    if query.order is Order.random:
        assert len(ids) == len(set(ids)) == min(50, total) and set(ids) <= hits
    else:
        page = await sqlite.search(query, 50)
        assert ids == [hit.ID for hit in page.hits]


@pytest.mark.parametrize("order", [Order.added_desc, Order.added_asc])
async def test_ordered_pages_are_sqlites_at_every_offset(peer: TantivyPeer, sqlite: SqliteSearch, order: Order) -> None:
    for text in ("tag_0", "tag_1 rating:s,q", ""):
        query = SearchQuery(**{**parse_query(text).__dict__, "order": order})
        for offset in (0, 7, 120):
            total, ids = peer.search(query, 20, offset)
            page = await sqlite.search(query, 20, offset)
            assert (total, ids) == (page.total, [hit.ID for hit in page.hits]), (text, offset)


@pytest.mark.parametrize("prefix", ["tag_", "tag_1", "tag_12", "tag_123", "tag_4999", "", "x"])
async def test_tag_autocomplete_is_sqlites(peer: TantivyPeer, sqlite: SqliteSearch, prefix: str) -> None:
    for limit in (1, 10, 50):
        expected = [(t.name, t.count) for t in await sqlite.tags(prefix, limit)]
        assert peer.tags(prefix, limit) == expected


async def test_whole_tags_prefixes_and_words_on_awkward_tags(tmp_path: Path) -> None:
    docs = [
        synthetic(1, "a_b cat_ears", rating=Rating.explicit),
        synthetic(2, "axb a%c"),
        synthetic(3, "日本語 tag_1"),
        synthetic(4, "xtag_1 tag_10 say_(hi) café_au_lait"),
    ]
    peer = TantivyPeer(tmp_path / "t")
    peer.build(docs)
    sqlite = SqliteSearch(tmp_path / "s.sqlite3")
    await sqlite.add_documents(docs)
    queries = [
        SearchQuery(prefixes=("a_",)), SearchQuery(prefixes=("a%",)), SearchQuery(prefixes=("say_(",)),
        SearchQuery(prefixes=("tag_1",)), SearchQuery(all_tags=("cat",)), SearchQuery(words=("cat",)),
        SearchQuery(words=("ears cat",)), SearchQuery(words=("Cafe",)), SearchQuery(words=("au-lait",)),
        SearchQuery(words=("-",)), SearchQuery(prefixes=("日本",)), SearchQuery(none_prefixes=("a",)),
        SearchQuery(any_tags=("axb", "tag_10")), SearchQuery(ratings=(Rating.explicit,)),
        SearchQuery(numeric=(NumericFilter("size", ">", 102), NumericFilter("size", "<=", 104))),
    ]  # fmt: skip
    for query in queries:
        total, ids = peer.search(query, 10)
        assert set(ids) == await every_hit(sqlite, query) and total == len(ids), query
    await sqlite.close()


def test_random_order_is_a_uniform_sample_of_all_hits(peer: TantivyPeer, corpus: list[ImageDocument]) -> None:
    # tag_100's images are spread over the whole insertion order, so the sample crosses many blocks.
    hits = {d.ID for d in corpus if "tag_100" in d.Tags}
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(400):
        total, ids = peer.search(parse_query("tag_100"), 5)
        assert total == len(hits) and len(set(ids)) == 5
        seen.update(ids)
    expected = 400 * 5 / len(hits)
    assert set(seen) == hits
    assert max(seen.values()) < 3 * expected and min(seen.values()) > 0


def test_a_limit_of_zero_counts_and_shows_nothing(peer: TantivyPeer) -> None:
    for text in ("tag_0", "tag_0 order:-added"):
        total, ids = peer.search(parse_query(text), 0)
        assert total == peer.search(parse_query(text), 5)[0] > 0 and ids == []


def test_a_second_peer_on_the_same_path_reuses_the_index(peer: TantivyPeer, corpus: list[ImageDocument]) -> None:
    again = TantivyPeer(peer.path)
    assert again.build(corpus) == 0.0 and again.from_cache and again.built_seconds == peer.built_seconds > 0
    assert again.search(parse_query("tag_0"), 5)[0] == peer.search(parse_query("tag_0"), 5)[0]


async def test_images_added_in_the_same_second_are_ordered_as_sqlite_orders_them(tmp_path: Path) -> None:
    docs = [synthetic(n, "t", added=1_700_000_000 - n + n // 4 * 4) for n in range(12)]  # four to a second
    peer = TantivyPeer(tmp_path / "t")
    peer.build(docs)
    sqlite = SqliteSearch(tmp_path / "s.sqlite3")
    await sqlite.add_documents(docs)
    for order in (Order.added_desc, Order.added_asc):
        for offset in (0, 3, 10):
            page = await sqlite.search(SearchQuery(order=order), 5, offset)
            assert peer.search(SearchQuery(order=order), 5, offset) == (12, [hit.ID for hit in page.hits])
    await sqlite.close()
