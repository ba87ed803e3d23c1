"""The SQLite backend against a real database file."""

import collections
import multiprocessing
from pathlib import Path

import pytest

from paktum_common.models import ImageDocument, Rating
from paktum_common.search import NumericFilter, Order, SearchQuery, parse_query
from paktum_common.search.sqlite import SqliteSearch


def doc(n: int, tags: str, rating: Rating = Rating.safe, added: int = 1_700_000_000) -> ImageDocument:
    md5 = f"{n:032x}"
    return ImageDocument(
        ID=md5, URL=f"/images/{md5}.jpg", ThumbnailURL=f"/thumbnails/{md5}.jpg", Tags=tags.split(),
        Tagstring=tags, Rating=rating, Added=str(added + n), PHash=(1 << 64) - 1 - n, Size=100 + n,
        Width=640, Height=480, Filename=f"{md5}.jpg",
    )  # fmt: skip


@pytest.fixture
async def index(tmp_path: Path):
    search = SqliteSearch(tmp_path / "search.sqlite3")
    await search.add_documents(
        [
            doc(1, "cat_ears solo smile"),
            doc(2, "cat_ears duo", Rating.questionable),
            doc(3, "dog solo", Rating.explicit),
            doc(4, "cat_ears solo", Rating.general),
        ]
    )
    yield search
    await search.close()


async def ids(search: SqliteSearch, text: str, limit: int = 50) -> set[int]:
    page = await search.search(parse_query(text), limit)
    assert page.total == len(page.hits) or page.total > limit
    return {int(hit.ID, 16) for hit in page.hits}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {1, 2, 3, 4}),
        ("cat_ears", {1, 2, 4}),
        ("cat_ears,solo", {1, 4}),
        ("cat_ears -solo", {2}),
        ("solo rating:e", {3}),
        ("rating:s,q", {1, 2}),
        ("nothing_has_this", set()),
        ("cat", set()),  # tags match whole, not as words
    ],
)
async def test_tag_queries(index: SqliteSearch, text: str, expected: set[int]) -> None:
    assert await ids(index, text) == expected


async def test_documents_round_trip_with_their_64_bit_hash(index: SqliteSearch) -> None:
    got = await index.get_document(f"{1:032x}")
    assert got == doc(1, "cat_ears solo smile")
    assert got is not None and got.PHash == (1 << 64) - 2
    assert await index.get_document("f" * 32) is None


async def test_adding_an_existing_id_replaces_it(index: SqliteSearch) -> None:
    await index.add_documents([doc(1, "renamed")])
    assert await index.count() == 4
    assert await ids(index, "renamed") == {1}
    assert await ids(index, "smile") == set()


async def test_delete(index: SqliteSearch) -> None:
    await index.delete_documents([f"{2:032x}", "not-there"])
    assert await index.count() == 3
    assert await ids(index, "cat_ears") == {1, 4}


async def test_order_by_added(index: SqliteSearch) -> None:
    newest = await index.search(SearchQuery(order=Order.added_desc), 2)
    oldest = await index.search(SearchQuery(order=Order.added_asc), 2, offset=1)
    assert [int(h.ID, 16) for h in newest.hits] == [4, 3]
    assert [int(h.ID, 16) for h in oldest.hits] == [2, 3]


async def test_random_order_is_uniform_over_all_hits(tmp_path: Path) -> None:
    search = SqliteSearch(tmp_path / "s.sqlite3")
    await search.add_documents([doc(n, "t") for n in range(40)])
    seen: collections.Counter[int] = collections.Counter()
    orders = set()
    for _ in range(400):
        page = await search.search(SearchQuery(all_tags=("t",)), 5)
        assert page.total == 40 and len(page.hits) == 5 == len({h.ID for h in page.hits})
        orders.add(tuple(h.ID for h in page.hits))
        seen.update(int(h.ID, 16) for h in page.hits)
    # 2000 picks over 40 documents: 50 each expected; every document drawn, none wildly over-drawn.
    assert set(seen) == set(range(40))
    assert max(seen.values()) < 100 and min(seen.values()) > 15
    assert len(orders) > 350
    await search.close()


def _writer(path: str, start: int) -> None:
    import asyncio

    async def write() -> None:
        search = SqliteSearch(path)
        for n in range(start, start + 50):
            await search.add_documents([doc(n, "shared")])
        await search.close()

    asyncio.run(write())


async def test_several_processes_write_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite3")
    SqliteSearch(path)  # create the schema once
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, start)) for start in (0, 1000, 2000)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    search = SqliteSearch(path)
    assert (await search.search(SearchQuery(all_tags=("shared",)), 1)).total == 150
    await search.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (SearchQuery(any_tags=("dog", "duo")), {2, 3}),
        (SearchQuery(prefixes=("cat",)), {1, 2, 4}),
        (SearchQuery(prefixes=("s",), none_prefixes=("sm",)), {3, 4}),
        (SearchQuery(numeric=(NumericFilter("size", ">", 102),)), {3, 4}),
        (SearchQuery(numeric=(NumericFilter("added", "<=", 1_700_000_002), NumericFilter("width", "=", 640))), {1, 2}),
        (SearchQuery(words=("cat",)), {1, 2, 4}),  # full text finds the words inside tags
        (SearchQuery(words=("ears", "smile")), {1}),
    ],
    ids=["any", "prefix", "prefix-not-prefix", "size", "added-and-width", "word", "two-words"],
)
async def test_query_object_terms(index: SqliteSearch, query: SearchQuery, expected: set[int]) -> None:
    page = await index.search(query, 50)
    assert {int(h.ID, 16) for h in page.hits} == expected and page.total == len(expected)
