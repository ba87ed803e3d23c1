"""The search contract: the same tests against every backend. SQLite always; Meilisearch when
PAKTUM_TEST_MEILI_URL (and PAKTUM_TEST_MEILI_KEY if it has a master key) names a live server."""

from __future__ import annotations

import collections
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from paktum_common.catalog import Catalog
from paktum_common.contracts import ImageDocument, Rating, TagEdit
from paktum_common.search import NumericFilter, Order, SearchBackend, SearchQuery, TagCount, parse_query
from paktum_common.search.meili import MeiliSearch
from paktum_common.search.meili_client import MeiliError
from paktum_common.search.meili_migrations import lock_index, migrations_index
from paktum_common.search.sqlite import SqliteSearch
from paktum_common.store import ImageStore
from tests.documents import synthetic
from tests.fakemeili import FakeMeili

LIVE_MEILI = os.environ.get("PAKTUM_TEST_MEILI_URL", "")


def doc(n: int, tags: str | list[str], rating: Rating = Rating.safe, added: int = 1_700_000_000) -> ImageDocument:
    return synthetic(n, tags, rating=rating, added=added, width=640 + n % 2)


@contextlib.asynccontextmanager
async def opened(kind: str, tmp_path: Path) -> AsyncIterator[SearchBackend]:
    if kind == "sqlite":
        sqlite = SqliteSearch(tmp_path / "search.sqlite3")
        yield sqlite
        await sqlite.close()
        return
    if kind == "fakemeili":
        # Our side of the wire for real against Meilisearch's documented behaviour (tests/fakemeili.py).
        fake = FakeMeili().start()
        meili = MeiliSearch(fake.url, task_timeout=5)
        yield meili
        await meili.close()
        fake.stop()
        return
    if not LIVE_MEILI:
        pytest.skip("PAKTUM_TEST_MEILI_URL is not set: the contract suite runs on SQLite only")
    index = f"paktum_test_{uuid.uuid4().hex[:12]}"
    meili = MeiliSearch(LIVE_MEILI, os.environ.get("PAKTUM_TEST_MEILI_KEY") or None, index=index, task_timeout=120)
    yield meili
    for uid in (index, migrations_index(index), lock_index(index)):
        with contextlib.suppress(MeiliError):  # an index the test never created
            await meili.client.run_task("DELETE", f"/indexes/{uid}")
    await meili.close()


@pytest.fixture(params=["sqlite", pytest.param("meili", marks=pytest.mark.live)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchBackend]:
    async with opened(request.param, tmp_path) as search:
        yield search


@pytest.fixture(params=["sqlite", "fakemeili", pytest.param("meili", marks=pytest.mark.live)])
async def tag_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchBackend]:
    """Tag counts on every backend, and on the fake Meilisearch too: it evaluates facet search as documented."""
    async with opened(request.param, tmp_path) as search:
        yield search


@pytest.fixture
async def index(backend: SearchBackend) -> SearchBackend:
    await backend.add_documents(
        [
            doc(1, "cat_ears solo smile"),
            doc(2, "cat_ears duo", Rating.questionable),
            doc(3, "dog solo", Rating.explicit),
            doc(4, "cat_ears solo", Rating.general),
        ]
    )
    return backend


async def ids_of(search: SearchBackend, query: SearchQuery, limit: int = 50) -> set[int]:
    page = await search.search(query, limit)
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
        ("cat", set()),  # tags match whole, not as words or prefixes
        ("cat_ear", set()),  # and without typo tolerance
    ],
)
async def test_tag_queries(index: SearchBackend, text: str, expected: set[int]) -> None:
    assert await ids_of(index, parse_query(text)) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (SearchQuery(any_tags=("dog", "duo")), {2, 3}),
        (SearchQuery(prefixes=("cat",)), {1, 2, 4}),
        (SearchQuery(prefixes=("s",), none_prefixes=("sm",)), {3, 4}),
        (SearchQuery(numeric=(NumericFilter("size", ">", 102),)), {3, 4}),
        (SearchQuery(numeric=(NumericFilter("added", "<=", 1_700_000_002), NumericFilter("width", "=", 641))), {1}),
        (SearchQuery(numeric=(NumericFilter("height", ">=", 480), NumericFilter("width", "<", 641))), {2, 4}),
        (SearchQuery(words=("cat",)), {1, 2, 4}),  # full text finds the words inside tags
        (SearchQuery(words=("ears", "smile")), {1}),
        (SearchQuery(words=("ca",)), set()),  # words match whole
        (SearchQuery(words=("cat ears",), none_tags=("duo",)), {1, 4}),
    ],
    ids=[
        "any",
        "prefix",
        "prefix-not-prefix",
        "size",
        "added-and-width",
        "height-and-width",
        "word",
        "two-words",
        "no-word-prefix",
        "phrase-and-not",
    ],
)
async def test_query_object_terms(index: SearchBackend, query: SearchQuery, expected: set[int]) -> None:
    page = await index.search(query, 50)
    assert {int(h.ID, 16) for h in page.hits} == expected and page.total == len(expected)


HOSTILE = [
    'say_"cheese"',
    "back\\slash",
    "ends_with\\",
    '\\"',
    '" OR Tags EXISTS OR "',
    "x) OR (Tags EXISTS",
    "tag with spaces",
    "(parenthesis)",
    "[bracket]",
    "it's",
    "a,b",
    "日本語",
    "emoji_😀",
    "AND",
]


async def test_hostile_tags_each_find_exactly_their_image(backend: SearchBackend) -> None:
    await backend.add_documents([doc(n, [tag, "common"]) for n, tag in enumerate(HOSTILE)])
    for n, tag in enumerate(HOSTILE):
        assert await ids_of(backend, SearchQuery(all_tags=(tag,))) == {n}, tag
        assert await ids_of(backend, SearchQuery(all_tags=("common",), none_tags=(tag,))) == set(
            range(len(HOSTILE))
        ) - {n}, tag
    assert await ids_of(backend, SearchQuery(any_tags=(HOSTILE[0], HOSTILE[4], "absent"))) == {0, 4}
    # A tag built to escape its quotes finds nothing when no image has it, rather than everything.
    assert await ids_of(backend, SearchQuery(all_tags=('nothing" OR Tags EXISTS OR "x',))) == set()


async def test_documents_round_trip_with_their_64_bit_hash(index: SearchBackend) -> None:
    got = await index.get_document(f"{1:032x}")
    assert got == doc(1, "cat_ears solo smile")
    assert got is not None and got.PHash == (1 << 64) - 2
    assert await index.get_document("f" * 32) is None
    extremes = [doc(10, "x").model_copy(update={"PHash": 0}), doc(11, "x").model_copy(update={"PHash": (1 << 64) - 1})]
    await index.add_documents(extremes)
    found = await index.get_documents([d.ID for d in extremes] + ["0" * 31 + "f"])
    assert found == {d.ID: d for d in extremes}


async def test_adding_an_existing_id_replaces_it(index: SearchBackend) -> None:
    await index.add_documents([doc(1, "renamed")])
    assert await index.count() == 4
    assert await ids_of(index, SearchQuery(all_tags=("renamed",))) == {1}
    assert await ids_of(index, SearchQuery(all_tags=("smile",))) == set()
    assert await ids_of(index, SearchQuery(prefixes=("sm",))) == set()


async def test_delete(index: SearchBackend) -> None:
    await index.delete_documents([f"{2:032x}", "not-there"])
    assert await index.count() == 3
    assert await ids_of(index, SearchQuery(all_tags=("cat_ears",))) == {1, 4}


async def test_order_by_added_with_offsets(index: SearchBackend) -> None:
    newest = await index.search(SearchQuery(order=Order.added_desc), 2)
    oldest = await index.search(SearchQuery(order=Order.added_asc), 2, offset=1)
    last = await index.search(SearchQuery(order=Order.added_asc), 3, offset=3)
    assert [int(h.ID, 16) for h in newest.hits] == [4, 3] and newest.total == 4
    assert [int(h.ID, 16) for h in oldest.hits] == [2, 3] and oldest.total == 4
    assert [int(h.ID, 16) for h in last.hits] == [4] and last.total == 4


async def test_totals_are_exact_beyond_a_thousand_hits(backend: SearchBackend) -> None:
    await backend.add_documents([doc(n, "many") for n in range(1100)])
    assert (await backend.search(SearchQuery(all_tags=("many",)), 5)).total == 1100
    tail = await backend.search(SearchQuery(all_tags=("many",), order=Order.added_asc), 10, offset=1095)
    assert [int(h.ID, 16) for h in tail.hits] == list(range(1095, 1100)) and tail.total == 1100
    assert await backend.count() == 1100


async def test_random_order_is_uniform_over_all_hits(backend: SearchBackend) -> None:
    await backend.add_documents([doc(n, "t") for n in range(40)] + [doc(100, "other")])
    seen: collections.Counter[int] = collections.Counter()
    orders = set()
    for _ in range(300):
        page = await backend.search(SearchQuery(all_tags=("t",)), 5)
        assert page.total == 40 and len(page.hits) == 5 == len({h.ID for h in page.hits})
        orders.add(tuple(h.ID for h in page.hits))
        seen.update(int(h.ID, 16) for h in page.hits)
    # 1500 picks over 40 documents: 37.5 each expected; every one drawn, none wildly over- or under-drawn.
    assert set(seen) == set(range(40))
    assert max(seen.values()) < 75 and min(seen.values()) > 10
    assert len(orders) > 280


async def test_export_returns_every_document_once_in_pages(backend: SearchBackend) -> None:
    docs = [doc(n, "e") for n in range(25)]
    await backend.add_documents(docs)
    pages = [page async for page in backend.export(batch=10)]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert sorted((d for p in pages for d in p), key=lambda d: d.ID) == docs


async def test_ping_and_count_on_an_empty_index(backend: SearchBackend) -> None:
    await backend.ping()
    assert await backend.count() == 0
    assert (await backend.search(SearchQuery(), 10)).total == 0


async def test_matching_ids_returns_every_hit_once_across_seconds_shared_by_pages(backend: SearchBackend) -> None:
    # Seconds shared by more hits than a page, and by the end of one page and the start of the next.
    docs = [doc(n, "m" if n % 4 else "not_m", added=1_700_000_000 - n + n // 7 * 7) for n in range(60)]
    await backend.add_documents(docs)
    pages = [page async for page in backend.matching_ids(parse_query("m"), batch=4)]
    found = [i for page in pages for i in page]
    assert len(found) == len(set(found)) == 45 and {int(i, 16) for i in found} == {n for n in range(60) if n % 4}
    assert all(len(page) == 4 for page in pages[:-1])


async def test_an_owners_edit_is_found_under_its_new_tags_only(
    index: SearchBackend, redis_client: Redis, tmp_path: Path
) -> None:
    catalog = Catalog(redis_client, index, ImageStore(tmp_path / "images", tmp_path / "thumbnails"), distance=10)
    edit = TagEdit(add=("kitten",), remove=("cat_ears",), rating=Rating.explicit)
    assert await catalog.update_matching(parse_query("cat_ears solo"), edit) == (2, 2)
    assert await ids_of(index, parse_query("cat_ears")) == {2}
    assert await ids_of(index, parse_query("kitten rating:e")) == {1, 4}
    assert await ids_of(index, SearchQuery(prefixes=("kit",))) == {1, 4}
    assert await ids_of(index, SearchQuery(words=("ears",))) == {2}
    # A later write of the same files (a re-scrape) keeps the edit.
    await catalog.index([doc(1, "cat_ears solo smile new_tag"), doc(4, "cat_ears solo")])
    assert await ids_of(index, parse_query("cat_ears")) == {2}
    assert await ids_of(index, parse_query("new_tag kitten rating:e")) == {1}


# -- tag counts (autocomplete) -------------------------------------------------------------------------


def counts(found: list[TagCount]) -> list[tuple[str, int]]:
    return [(t.name, t.count) for t in found]


TAGGED = [
    doc(1, "tag_1 tag_10 solo 日本語 emile"),
    doc(2, "tag_1 tag_10 a_b 日本語 emile"),
    doc(3, "tag_1 xtag_1 axb 日本"),
    doc(4, "tag_10 tag_2 axb a%c émile"),
    doc(5, 'tag_1 abc emoji_😀 say_"cheese"'),
]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("tag_1", [("tag_1", 4), ("tag_10", 3)]),  # the whole tag starts with it: not xtag_1, not a word inside
        ("tag_10", [("tag_10", 3)]),
        ("tag_", [("tag_1", 4), ("tag_10", 3), ("tag_2", 1)]),
        ("a_", [("a_b", 1)]),  # `_` is no wildcard
        ("a%", [("a%c", 1)]),  # nor is `%`
        ("a", [("axb", 2), ("a%c", 1), ("a_b", 1), ("abc", 1)]),  # ties by name (code point order)
        ("日本", [("日本語", 2), ("日本", 1)]),
        ("e", [("emile", 2), ("emoji_😀", 1)]),  # not émile: no accent folding
        ("é", [("émile", 1)]),
        ('say_"', [('say_"cheese"', 1)]),
        ("tag_3", []),
        ("x" * 300, []),
    ],
    ids=[
        "tag_1",
        "longer",
        "tag_",
        "underscore",
        "percent",
        "ties",
        "cjk",
        "no-accent-folding",
        "accent",
        "quote",
        "none",
        "long",
    ],
)
async def test_tags_start_with_the_prefix_most_used_first(
    tag_backend: SearchBackend, prefix: str, expected: list[tuple[str, int]]
) -> None:
    await tag_backend.add_documents(TAGGED)
    assert counts(await tag_backend.tags(prefix, 50)) == expected


async def test_tags_limit_and_the_empty_prefix_rank_every_tag(tag_backend: SearchBackend) -> None:
    await tag_backend.add_documents(TAGGED)
    assert counts(await tag_backend.tags("", 4)) == [("tag_1", 4), ("tag_10", 3), ("axb", 2), ("emile", 2)]
    assert counts(await tag_backend.tags("tag_", 1)) == [("tag_1", 4)]
    every = await tag_backend.tags("", 50)
    assert len(every) == len({t for d in TAGGED for t in d.Tags}) == 15
    assert sum(t.count for t in every) == sum(len(d.Tags) for d in TAGGED)


async def test_tag_counts_follow_deletes_and_replacements(tag_backend: SearchBackend) -> None:
    await tag_backend.add_documents(TAGGED)
    await tag_backend.delete_documents([f"{2:032x}"])
    # Replacing a document moves its counts: tag_1 and solo leave it, tag_2 and new come.
    await tag_backend.add_documents([doc(1, "tag_10 tag_2 new")])
    assert counts(await tag_backend.tags("tag_", 50)) == [("tag_1", 2), ("tag_10", 2), ("tag_2", 2)]
    assert counts(await tag_backend.tags("so", 50)) == []  # used by no image any more
    assert counts(await tag_backend.tags("a", 50)) == [("axb", 2), ("a%c", 1), ("abc", 1)]
    assert counts(await tag_backend.tags("n", 50)) == [("new", 1)]


async def test_tag_counts_are_exact_past_a_page_of_images(tag_backend: SearchBackend) -> None:
    # More images than any page or batch, and more tags with the prefix (300) than one Meilisearch facet answer.
    docs = [doc(n, [f"many_{n % 7}", f"p_{n % 300:03d}", "all"]) for n in range(1200)]
    docs = [d.model_copy(update={"Tags": [*d.Tags, "p_hot"]}) if n % 24 == 0 else d for n, d in enumerate(docs)]
    docs = [d.model_copy(update={"Tags": [*d.Tags, "p_warm"]}) if n % 60 == 1 else d for n, d in enumerate(docs)]
    await tag_backend.add_documents(docs)
    assert counts(await tag_backend.tags("many_", 3)) == [("many_0", 172), ("many_1", 172), ("many_2", 172)]
    assert counts(await tag_backend.tags("", 2)) == [("all", 1200), ("many_0", 172)]
    assert counts(await tag_backend.tags("p_", 2)) == [("p_hot", 50), ("p_warm", 20)]
    assert counts(await tag_backend.tags("p_29", 2)) == [("p_290", 4), ("p_291", 4)]
