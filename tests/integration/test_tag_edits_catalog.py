"""The catalog's edits on a real SQLite index and real Redis: bulk edits in batches over more hits than a batch, many
added in the same second, a query whose tag the edit takes away; and the edit on the Meilisearch wire (FakeMeili)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.catalog import BATCH, Catalog
from paktum_common.contracts import Rating, TagEdit
from paktum_common.search import SearchQuery, parse_query
from paktum_common.search.meili import MeiliSearch
from paktum_common.search.sqlite import SqliteSearch
from paktum_common.store import ImageStore
from tests.documents import synthetic
from tests.fakemeili import FakeMeili


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqliteSearch]:
    search = SqliteSearch(tmp_path / "search.sqlite3")
    yield search
    await search.close()


def catalog(redis: Redis, search: SqliteSearch | MeiliSearch, tmp_path: Path) -> Catalog:
    return Catalog(redis, search, ImageStore(tmp_path / "images", tmp_path / "thumbnails"), distance=10)


async def test_a_bulk_edit_reaches_every_hit_once_in_batches(
    sqlite: SqliteSearch, redis_client: Redis, tmp_path: Path
) -> None:
    # 1300 hits over three batches; 700 of them added in one second, so pages break inside a second.
    many = [synthetic(n, "old keep") for n in range(1300)]
    same_second = [d.model_copy(update={"Added": "1700001000"}) for d in many[600:]]
    await sqlite.add_documents([*many[:600], *same_second, synthetic(5000, "other")])
    cat = catalog(redis_client, sqlite, tmp_path)
    matched, changed = await cat.update_matching(parse_query("old"), TagEdit(add=("new",), remove=("old",)))
    assert (matched, changed) == (1300, 1300)
    assert (await sqlite.search(SearchQuery(all_tags=("old",)), 1)).total == 0
    assert (await sqlite.search(SearchQuery(all_tags=("new", "keep")), 1)).total == 1300
    assert (await sqlite.search(SearchQuery(all_tags=("other",)), 1)).total == 1
    assert await redis_client.hlen(keys.TAG_EDITS) == 1300
    assert await redis_client.keys(keys.TAG_EDIT_HITS + "*") == []  # the list of hits is gone
    assert await cat.update_matching(parse_query("new"), TagEdit(add=("keep",))) == (1300, 0)


async def test_matching_ids_pages_through_a_second_with_more_hits_than_a_page(sqlite: SqliteSearch) -> None:
    await sqlite.add_documents([synthetic(n, "t").model_copy(update={"Added": "1700000000"}) for n in range(23)])
    pages = [page async for page in sqlite.matching_ids(parse_query("t"), batch=5)]
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert sorted(i for p in pages for i in p) == sorted(f"{n:032x}" for n in range(23))


async def test_update_tags_batches_are_bounded_and_skip_unknown_ids(
    sqlite: SqliteSearch, redis_client: Redis, tmp_path: Path
) -> None:
    cat = catalog(redis_client, sqlite, tmp_path)
    with pytest.raises(ValueError, match="at most 500"):
        await cat.update_tags([f"{n:032x}" for n in range(BATCH + 1)], TagEdit(add=("x",)))
    await sqlite.add_documents([synthetic(1, "a")])
    assert [d.ID for d in await cat.update_tags([f"{1:032x}", "f" * 32], TagEdit(add=("x",)))] == [f"{1:032x}"]
    assert await redis_client.hkeys(keys.TAG_EDITS) == [f"{1:032x}"]


async def test_a_removed_image_forgets_its_edit(sqlite: SqliteSearch, redis_client: Redis, tmp_path: Path) -> None:
    cat = catalog(redis_client, sqlite, tmp_path)
    await sqlite.add_documents([synthetic(1, "a")])
    await cat.update_tags([f"{1:032x}"], TagEdit(remove=("a",)))
    await cat.remove([f"{1:032x}"], ban=False, reason="test")
    assert await redis_client.hlen(keys.TAG_EDITS) == 0
    await cat.index([synthetic(1, "a")])  # it comes back as scraped
    assert (await sqlite.get_document(f"{1:032x}")).Tags == ["a"]  # type: ignore[union-attr]


async def test_an_edit_on_the_meilisearch_wire(fake: FakeMeili, redis_client: Redis, tmp_path: Path) -> None:
    meili = MeiliSearch(fake.url, index="images", timeout=2, task_timeout=5)
    try:
        await meili.add_documents([synthetic(1, "cat_ears solo"), synthetic(2, "dog")])
        fake.clear()
        cat = catalog(redis_client, meili, tmp_path)
        edit = TagEdit(add=("kitten",), remove=("solo",), rating=Rating.explicit)
        [written] = await cat.update_tags([f"{1:032x}"], edit)
        [body] = fake.bodies("POST", "/indexes/images/documents")
        [sent] = body
        assert sent["Tags"] == ["cat_ears", "kitten"] and sent["Tagstring"] == "cat_ears kitten"
        assert sent["Rating"] == "explicit" and "sol" not in sent["TagPrefixes"] and "kit" in sent["TagPrefixes"]
        assert sent["PHash"] == f"{written.PHash:016x}"  # the hash stays a string on the wire
        # The bulk edit asks for the oldest first (a keyset over AddedTs), with the query's filter.
        fake.clear()
        await cat.update_matching(parse_query("dog"), TagEdit(add=("x",)))
        [search] = fake.bodies("POST", "/indexes/images/search")
        assert search["sort"] == ["AddedTs:asc"] and 'Tags = "dog"' in str(search["filter"])
    finally:
        await meili.close()


async def test_an_edit_cut_short_before_its_index_write_is_done_by_the_next(
    sqlite: SqliteSearch, redis_client: Redis, tmp_path: Path
) -> None:
    cat = catalog(redis_client, sqlite, tmp_path)
    await sqlite.add_documents([synthetic(1, "a b")])
    # What a crash between the two steps leaves: the edit remembered, the index not yet written.
    await redis_client.hset(keys.TAG_EDITS, f"{1:032x}", TagEdit(remove=("a",)).to_redis())
    [written] = await cat.update_tags([f"{1:032x}"], TagEdit(add=("c",)))
    assert written.Tags == ["b", "c"]
    assert TagEdit.from_redis(await redis_client.hget(keys.TAG_EDITS, f"{1:032x}")) == TagEdit(  # type: ignore[arg-type]
        add=("c",), remove=("a",)
    )


async def test_concurrent_edits_of_one_image_through_two_catalogs_all_apply(
    sqlite: SqliteSearch, redis_client: Redis, tmp_path: Path
) -> None:
    # Two catalogs (two api replicas) on one Redis and one index, editing the same image and a bulk edit at once.
    await sqlite.add_documents([synthetic(1, "a"), synthetic(2, "a")])
    first, second = catalog(redis_client, sqlite, tmp_path), catalog(redis_client, sqlite, tmp_path)
    image = f"{1:032x}"
    edits = [(first if n % 2 else second).update_tags([image], TagEdit(add=(f"t{n}",))) for n in range(10)]
    await asyncio.gather(*edits, second.update_matching(parse_query("a"), TagEdit(add=("bulk",))))
    wanted = {"a", "bulk", *(f"t{n}" for n in range(10))}
    doc = (await sqlite.get_documents([image]))[image]
    assert set(doc.Tags) == wanted
    assert set(TagEdit.from_redis(await redis_client.hget(keys.TAG_EDITS, image)).add) == wanted - {"a"}
    assert await redis_client.exists(keys.TAG_EDIT_LOCK) == 0  # released
