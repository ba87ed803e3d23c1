"""Our side of the Meilisearch wire, for real: the exact requests the backend sends over HTTP and how it
reads answers in Meilisearch's documented formats, errors and a server that is down included."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator

import pytest

from paktum_cli.embedded_redis import free_port
from paktum_common.errors import InvalidQueryError, PaktumError, SearchUnavailableError
from paktum_common.search import SearchQuery, open_search
from paktum_common.search.meili import MeiliSearch
from paktum_common.search.meili_client import MeiliClient, MeiliError
from paktum_common.search.meili_migrations import MAX_TOTAL_HITS, MIGRATIONS, migrate
from paktum_common.search.query import NumericFilter, Order
from paktum_common.settings import Settings
from tests.documents import synthetic
from tests.fakemeili import FakeMeili, fixture
from tests.meili_filter_grammar import read_quoted, read_quoted_list

FIELDS = [
    "ID", "Tags", "Tagstring", "Rating", "Added", "PHash", "Size", "Width", "Height",
    "Filename", "Source", "SourceID", "SourceURL", "PHashAlternates", "Symmetric", "PHashSymmetric", "PHashSignature",
]  # fmt: skip


@pytest.fixture
async def meili(fake: FakeMeili) -> AsyncIterator[MeiliSearch]:
    backend = MeiliSearch(fake.url, index="images", timeout=2, task_timeout=5)
    yield backend
    await backend.close()


async def ready(meili: MeiliSearch, fake: FakeMeili) -> None:
    await meili.ready()
    fake.clear()


# -- migrations ----------------------------------------------------------------------------------------


async def test_first_start_applies_every_migration_in_order_under_the_lock(meili: MeiliSearch, fake: FakeMeili) -> None:
    await meili.ready()
    assert fake.calls() == [
        ("GET", "/version"),
        ("GET", "/indexes/images"),  # no index: nothing applied
        ("POST", "/indexes"),  # the lock
        ("GET", "/indexes/images"),
        ("POST", "/indexes"),  # migration 1
        ("POST", "/indexes/images_migrations/documents"),
        ("PATCH", "/indexes/images/settings"),  # migration 2
        ("POST", "/indexes/images_migrations/documents"),
        ("PATCH", "/indexes/images/settings"),  # migration 3
        ("POST", "/indexes/images_migrations/documents"),
        ("DELETE", "/indexes/images_migrations_lock"),
    ]
    assert fake.bodies("POST", "/indexes") == [
        {"uid": "images_migrations_lock", "primaryKey": "holder"},
        {"uid": "images", "primaryKey": "ID"},
    ]
    assert fake.bodies("PATCH", "/indexes/images/settings") == [
        {
            "searchableAttributes": ["Tagstring"],
            "filterableAttributes": ["Tags", "TagPrefixes", "Rating", "ID", "Width", "Height", "Size", "AddedTs"],
            "sortableAttributes": ["AddedTs", "Size", "Width", "Height"],
            "typoTolerance": {"enabled": False},
            "pagination": {"maxTotalHits": MAX_TOTAL_HITS},
        },
        {"faceting": {"maxValuesPerFacet": 200, "sortFacetValuesBy": {"*": "alpha", "Tags": "count"}}},
    ]
    records = fake.bodies("POST", "/indexes/images_migrations/documents")
    assert [r[0]["version"] for r in records] == [1, 2, 3]
    # Every task was polled past "processing" to its end before the next step.
    assert all(task.polls >= 2 for task in fake.tasks.values())
    assert set(fake.indexes) == {"images", "images_migrations"}


async def test_a_later_start_reads_the_record_and_changes_nothing(fake: FakeMeili) -> None:
    first = MeiliSearch(fake.url)
    await first.ready()
    await first.close()
    fake.clear()
    second = MeiliSearch(fake.url)
    await second.ready()
    await second.ready()
    await second.close()
    assert fake.calls() == [
        ("GET", "/version"),
        ("GET", "/indexes/images"),
        ("GET", "/indexes/images_migrations/documents"),
    ]


@pytest.mark.parametrize(("version", "ok"), [("1.3.9", False), ("0.30.5", False), ("1.4.0", True), ("2.0.0", True)])
async def test_a_meilisearch_older_than_1_4_is_refused_by_name(
    meili: MeiliSearch, fake: FakeMeili, version: str, ok: bool
) -> None:
    fake.version = version
    if ok:
        await meili.ready()
    else:
        with pytest.raises(MeiliError, match=f"Paktum needs Meilisearch 1.4 or newer, found {version}"):
            await meili.ready()
        assert "images" not in fake.indexes


async def test_a_key_that_may_not_read_the_version_is_no_obstacle(meili: MeiliSearch, fake: FakeMeili) -> None:
    fake.script("GET", "/version", 403, fixture("error_invalid_api_key"))
    await meili.ready()
    assert "images" in fake.indexes


async def test_an_index_deleted_by_hand_is_set_up_again_on_the_next_call(meili: MeiliSearch, fake: FakeMeili) -> None:
    await meili.add_documents([synthetic(1)])
    del fake.indexes["images"]
    with pytest.raises(MeiliError, match="index_not_found"):
        await meili.search(SearchQuery(), 5)
    assert (await meili.search(SearchQuery(), 5)).total == 0
    assert fake.indexes["images"].settings["filterableAttributes"][0] == "Tags"
    assert len(fake.bodies("PATCH", "/indexes/images/settings")) == 2 * 2


async def test_concurrent_starts_apply_each_migration_once(fake: FakeMeili) -> None:
    backends = [MeiliSearch(fake.url, task_timeout=5) for _ in range(4)]
    await asyncio.gather(*(b.ready() for b in backends))
    for backend in backends:
        await backend.close()
    assert fake.bodies("POST", "/indexes").count({"uid": "images", "primaryKey": "ID"}) == 1
    assert len(fake.bodies("PATCH", "/indexes/images/settings")) == 2
    assert len(fake.bodies("POST", "/indexes/images_migrations/documents")) == len(MIGRATIONS)
    assert "images_migrations_lock" not in fake.indexes


async def test_a_lock_held_by_a_live_process_makes_the_start_wait_then_fail_clearly(fake: FakeMeili) -> None:
    client = MeiliClient(fake.url, None, task_timeout=5)
    await client.run_task("POST", "/indexes", {"uid": "images_migrations_lock"})
    started = time.monotonic()
    with pytest.raises(SearchUnavailableError, match="another process is applying the migrations"):
        await migrate(client, "images", lock_wait=0.5)
    assert time.monotonic() - started >= 0.5
    assert "images" not in fake.indexes
    await client.close()


async def test_a_stale_lock_left_by_a_dead_process_is_broken(fake: FakeMeili) -> None:
    client = MeiliClient(fake.url, None, task_timeout=5)
    await client.run_task("POST", "/indexes", {"uid": "images_migrations_lock"})
    fake.indexes["images_migrations_lock"].created_at -= 3600
    assert await migrate(client, "images", stale_after=300) == [1, 2, 3]
    assert "images" in fake.indexes and "images_migrations_lock" not in fake.indexes
    await client.close()


async def test_a_failed_migration_task_is_an_error_and_is_retried_on_the_next_call(
    meili: MeiliSearch, fake: FakeMeili
) -> None:
    fake.fail_next_task("settingsUpdate", fixture("task_failed")["error"])
    with pytest.raises(MeiliError, match=r"settings of images.* failed: Index `images`: No space left") as caught:
        await meili.ready()
    assert caught.value.code == "no_space_left_on_device"
    assert "images_migrations_lock" not in fake.indexes  # the lock is released on failure
    await meili.ready()
    assert len(fake.bodies("PATCH", "/indexes/images/settings")) == 3  # the failed one, again, then migration 3


# -- documents -----------------------------------------------------------------------------------------


async def test_add_sends_hex_hashes_numeric_added_and_tag_prefixes_in_batches(fake: FakeMeili) -> None:
    meili = MeiliSearch(fake.url, batch=2)
    await ready(meili, fake)
    # The alternates (mirrors, rotations, the other flattening) go as hex too: JSON numbers lose bits past 2^53.
    first = synthetic(1, "ab c").model_copy(update={"PHashAlternates": (2**64 - 3, 5)})
    await meili.add_documents([first, synthetic(2), synthetic(3)])
    batches = fake.bodies("POST", "/indexes/images/documents")
    assert [len(b) for b in batches] == [2, 1]
    assert batches[0][0] == {
        "ID": f"{1:032x}",
        "Tags": ["ab", "c"], "Tagstring": "ab c", "Rating": "safe", "Added": "1700000001",
        "PHash": "fffffffffffffffe", "Size": 101, "Width": 640, "Height": 480, "Filename": f"{1:032x}.jpg",
        "Source": "", "SourceID": "", "SourceURL": "", "PHashAlternates": ["fffffffffffffffd", "0000000000000005"],
        "Symmetric": False, "PHashSymmetric": [], "PHashSignature": "", "AddedTs": 1700000001,
        "TagPrefixes": ["a", "ab", "c"],
    }  # fmt: skip
    assert [r.params for r in fake.requests if r.path == "/indexes/images/documents"] == [{"primaryKey": "ID"}] * 2
    # Both batches were enqueued before the first was awaited, and both were awaited to the end.
    posts = [i for i, r in enumerate(fake.requests) if r.method == "POST"]
    polls = [i for i, r in enumerate(fake.requests) if r.path.startswith("/tasks/")]
    assert max(posts) < min(polls)
    assert all(t.polls >= 2 for t in fake.tasks.values())
    await meili.close()


async def test_a_failed_addition_task_raises_with_meilisearchs_reason(meili: MeiliSearch, fake: FakeMeili) -> None:
    await ready(meili, fake)
    fake.fail_next_task("documentAdditionOrUpdate", fixture("task_failed")["error"])
    with pytest.raises(MeiliError, match=r"task \d+ \(add documents to images\) failed: .*No space left") as caught:
        await meili.add_documents([synthetic(1)])
    assert isinstance(caught.value, SearchUnavailableError) and caught.value.code == "no_space_left_on_device"


async def test_get_documents_fetches_by_a_quoted_id_filter_and_reads_the_64_bit_hash(
    meili: MeiliSearch, fake: FakeMeili
) -> None:
    await meili.add_documents([synthetic(1), synthetic(2)])
    fake.clear()
    found = await meili.get_documents([f"{1:032x}", f"{1:032x}", "f" * 32])
    assert fake.bodies("POST", "/indexes/images/documents/fetch") == [
        {"filter": [f'ID IN ["{1:032x}", "{"f" * 32}"]'], "fields": FIELDS, "limit": 2}
    ]
    assert found == {f"{1:032x}": synthetic(1)}
    assert found[f"{1:032x}"].PHash == (1 << 64) - 2
    assert await meili.get_document("0" * 32) is None


async def test_delete_sends_the_ids_and_awaits_the_task(meili: MeiliSearch, fake: FakeMeili) -> None:
    await meili.add_documents([synthetic(1), synthetic(2)])
    await meili.delete_documents([f"{2:032x}", f"{2:032x}", "not-there"])
    assert fake.bodies("POST", "/indexes/images/documents/delete-batch") == [[f"{2:032x}", "not-there"]]
    assert await meili.count() == 1


async def test_export_pages_through_every_document_without_derived_fields(meili: MeiliSearch, fake: FakeMeili) -> None:
    await meili.add_documents([synthetic(n) for n in range(7)])
    fake.clear()
    pages = [page async for page in meili.export(batch=3)]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [d for p in pages for d in p] == [synthetic(n) for n in range(7)]
    assert [r.params for r in fake.requests] == [
        {"offset": str(o), "limit": "3", "fields": ",".join(FIELDS)} for o in (0, 3, 6)
    ]


# -- search --------------------------------------------------------------------------------------------


async def test_an_ordered_search_is_one_page_request_with_the_exact_total(meili: MeiliSearch, fake: FakeMeili) -> None:
    await meili.add_documents([synthetic(n) for n in range(12)])
    fake.clear()
    query = SearchQuery(all_tags=('say_"cheese"',), numeric=(NumericFilter("added", ">", 5),), order=Order.added_desc)
    page = await meili.search(query, 5, offset=7)
    assert fake.bodies("POST", "/indexes/images/search") == [
        {
            "filter": ['Tags = "say_\\"cheese\\""', "AddedTs > 5"],
            "sort": ["AddedTs:desc"],
            "attributesToRetrieve": FIELDS,
            "page": 2,
            "hitsPerPage": 6,
        }
    ]
    # The fake pages over all documents in insertion order: page 2 of 6 is 6..11; skip 1 -> 7..11.
    assert [int(h.ID, 16) for h in page.hits] == [7, 8, 9, 10, 11]
    assert page.total == 12


async def test_a_recorded_page_answer_is_read_field_by_field(meili: MeiliSearch, fake: FakeMeili) -> None:
    await ready(meili, fake)
    fake.script("POST", "/indexes/images/search", 200, fixture("search_page"))
    page = await meili.search(SearchQuery(order=Order.added_asc), 1)
    assert page.total == 42
    [hit] = page.hits
    assert hit.PHash == 0xFFFFFFFFFFFFFFFE and hit.Tags == ["cat_ears", 'say_"cheese"'] and hit.Added == "1700000000"


async def test_an_offset_answer_without_an_exact_total_is_refused(meili: MeiliSearch, fake: FakeMeili) -> None:
    await ready(meili, fake)
    fake.script("POST", "/indexes/images/search", 200, fixture("search_offset"))
    with pytest.raises(MeiliError, match="without totalHits"):
        await meili.search(SearchQuery(order=Order.added_asc), 5)


async def test_random_order_counts_then_reads_sampled_positions_in_one_multi_search(
    meili: MeiliSearch, fake: FakeMeili
) -> None:
    await meili.add_documents([synthetic(n) for n in range(30)])
    fake.clear()
    page = await meili.search(SearchQuery(all_tags=("t",)), 5)
    assert page.total == 30 and len({h.ID for h in page.hits}) == 5
    [first] = fake.bodies("POST", "/indexes/images/search")
    assert first == {"filter": ['Tags = "t"'], "attributesToRetrieve": FIELDS, "page": 1, "hitsPerPage": 5}
    multi = fake.bodies("POST", "/multi-search")
    picked_later = [h for h in page.hits if int(h.ID, 16) >= 5]
    if picked_later:
        [body] = multi
        for sub in body["queries"]:
            assert sub["indexUid"] == "images" and sub["filter"] == ['Tags = "t"'] and "sort" not in sub
            assert sub["offset"] >= 5 and sub["limit"] >= 1
        asked = {sub["offset"] + i for sub in body["queries"] for i in range(sub["limit"])}
        assert asked == {int(h.ID, 16) for h in picked_later}
    else:
        assert multi == []


async def test_random_order_is_uniform_over_all_hits(meili: MeiliSearch, fake: FakeMeili) -> None:
    await meili.add_documents([synthetic(n) for n in range(40)])
    seen: collections.Counter[int] = collections.Counter()
    orders = set()
    for _ in range(200):
        page = await meili.search(SearchQuery(), 5)
        assert page.total == 40 and len({h.ID for h in page.hits}) == 5
        orders.add(tuple(h.ID for h in page.hits))
        seen.update(int(h.ID, 16) for h in page.hits)
    # 1000 picks over 40 documents: 25 each expected; every one drawn, none wildly over-drawn.
    assert set(seen) == set(range(40))
    assert max(seen.values()) < 55 and min(seen.values()) > 5
    assert len(orders) > 190


async def test_random_order_with_few_hits_is_one_request(meili: MeiliSearch, fake: FakeMeili) -> None:
    await meili.add_documents([synthetic(n) for n in range(3)])
    fake.clear()
    page = await meili.search(SearchQuery(), 10)
    assert sorted(int(h.ID, 16) for h in page.hits) == [0, 1, 2] and page.total == 3
    assert fake.calls() == [("POST", "/indexes/images/search")]
    beyond = await meili.search(SearchQuery(), 10, offset=3)
    assert beyond.hits == [] and beyond.total == 3


async def test_full_text_words_are_exact_phrases_that_must_all_match(meili: MeiliSearch, fake: FakeMeili) -> None:
    await ready(meili, fake)
    await meili.search(SearchQuery(words=("blue sky", "cat"), order=Order.added_asc), 1)
    [body] = fake.bodies("POST", "/indexes/images/search")
    assert body["q"] == '"blue sky" "cat"' and body["matchingStrategy"] == "all"


async def test_an_untranslatable_query_is_refused_before_anything_is_sent(meili: MeiliSearch, fake: FakeMeili) -> None:
    with pytest.raises(InvalidQueryError, match="at most 10 full-text words"):
        await meili.search(SearchQuery(words=tuple("abcdefghijk")), 5)
    assert fake.requests == []


# -- tag counts ----------------------------------------------------------------------------------------


async def test_tag_counts_are_one_facet_search_on_tags(meili: MeiliSearch, fake: FakeMeili) -> None:
    await meili.add_documents([synthetic(1, "cat_ears cat"), synthetic(2, "cat_ears dog"), synthetic(3, "xcat")])
    fake.clear()
    assert [(t.name, t.count) for t in await meili.tags("cat", 10)] == [("cat_ears", 2), ("cat", 1)]
    assert [(t.name, t.count) for t in await meili.tags("", 2)] == [("cat_ears", 2), ("cat", 1)]
    assert fake.calls() == [("POST", "/indexes/images/facet-search")] * 2
    # No q and no filter: counted over every document. An empty prefix sends no facetQuery (every value).
    assert fake.bodies("POST", "/indexes/images/facet-search") == [
        {"facetName": "Tags", "facetQuery": "cat"},
        {"facetName": "Tags"},
    ]


async def test_a_recorded_facet_answer_is_narrowed_to_the_prefix_as_written_and_ranked(
    meili: MeiliSearch, fake: FakeMeili
) -> None:
    await ready(meili, fake)
    fake.script("POST", "/indexes/images/facet-search", 200, fixture("facet_search"))
    found = await meili.tags("cat", 10)
    # çat_tail matched Meilisearch's folded prefix but does not start with "cat"; 87 and 87 go by name.
    assert [(t.name, t.count) for t in found] == [("cat_ears", 1204), ("cat", 87), ("catgirl", 87)]
    fake.script("POST", "/indexes/images/facet-search", 200, fixture("facet_search"))
    assert [t.name for t in await meili.tags("cat", 2)] == ["cat_ears", "cat"]


@pytest.mark.parametrize(
    "answer",
    [
        {"facetQuery": "cat"},
        {"facetHits": [{"value": "cat"}]},
        {"facetHits": [{"value": "cat", "count": "3"}]},
        {"facetHits": [{"value": 7, "count": 3}]},
        {"facetHits": [{"value": "cat", "count": -1}]},
        {"facetHits": ["cat"]},
    ],
    ids=["no-hits", "no-count", "count-string", "value-number", "negative", "not-object"],
)
async def test_a_facet_answer_paktum_cannot_read_is_an_error(meili: MeiliSearch, fake: FakeMeili, answer) -> None:
    await ready(meili, fake)
    fake.script("POST", "/indexes/images/facet-search", 200, answer)
    with pytest.raises(MeiliError, match="meilisearch answered"):
        await meili.tags("cat", 10)


async def test_tags_not_facet_searchable_is_unavailable_with_meilisearchs_reason(
    meili: MeiliSearch, fake: FakeMeili
) -> None:
    await ready(meili, fake)
    fake.indexes["images"].settings["filterableAttributes"] = ["ID", "Rating"]  # changed by hand
    with pytest.raises(SearchUnavailableError, match="invalid_facet_search_facet_name: Invalid facet name") as got:
        await meili.tags("cat", 10)
    assert isinstance(got.value, MeiliError) and got.value.status == 400


async def test_tag_counts_on_a_meilisearch_before_1_7_are_refused_by_name(meili: MeiliSearch, fake: FakeMeili) -> None:
    fake.version = "1.6.2"
    await meili.add_documents([synthetic(1, "cat")])
    assert (await meili.search(SearchQuery(), 5)).total == 1  # searching works; only the tag ranking would be wrong
    with pytest.raises(SearchUnavailableError, match=r"tag counts need Meilisearch 1\.7 or newer, found 1\.6"):
        await meili.tags("cat", 10)
    assert fake.bodies("POST", "/indexes/images/facet-search") == []


async def test_the_fake_keeps_the_most_used_facet_values_as_meilisearch_does(fake: FakeMeili) -> None:
    """The fake's facet search follows the settings (a check of the stand-in the contract suite uses)."""
    client = MeiliClient(fake.url, None, task_timeout=5)
    docs = [{"ID": str(n), "Tags": [f"t{n % 5}", *(["t_hot"] if n < 9 else [])]} for n in range(30)]
    await client.run_task("POST", "/indexes/x/documents?primaryKey=ID", docs)
    await client.run_task("PATCH", "/indexes/x/settings", {"filterableAttributes": ["Tags"]})
    alpha = await client.request("POST", "/indexes/x/facet-search", {"facetName": "Tags", "facetQuery": "T"})
    assert [h["value"] for h in alpha["facetHits"]] == ["t0", "t1", "t2", "t3", "t4", "t_hot"]
    faceting = {"maxValuesPerFacet": 2, "sortFacetValuesBy": {"Tags": "count"}}
    await client.run_task("PATCH", "/indexes/x/settings", {"faceting": faceting})
    top = await client.request("POST", "/indexes/x/facet-search", {"facetName": "Tags"})
    assert top["facetHits"] == [{"value": "t_hot", "count": 9}, {"value": "t4", "count": 6}]  # ties: the later kept
    await client.close()


# -- errors --------------------------------------------------------------------------------------------


async def test_invalid_search_filter_is_unavailable_with_meilisearchs_message_and_a_hint(
    meili: MeiliSearch, fake: FakeMeili
) -> None:
    await ready(meili, fake)
    fake.script("POST", "/indexes/images/search", 400, fixture("error_invalid_search_filter"))
    with pytest.raises(MeiliError, match="HTTP 400 invalid_search_filter: Invalid syntax for the filter") as got:
        await meili.search(SearchQuery(all_tags=("x",)), 5)
    assert got.value.code == "invalid_search_filter" and got.value.kind == "invalid_request"
    assert "were the index settings changed by hand?" in str(got.value)


async def test_index_not_found_is_unavailable_naming_the_code(meili: MeiliSearch, fake: FakeMeili) -> None:
    await ready(meili, fake)
    fake.script("POST", "/indexes/images/search", 404, fixture("error_index_not_found"))
    with pytest.raises(SearchUnavailableError, match="HTTP 404 index_not_found: Index `images` not found"):
        await meili.search(SearchQuery(), 5)


@pytest.mark.parametrize(("key", "code"), [(None, "missing_authorization_header"), ("wrong", "invalid_api_key")])
async def test_a_missing_or_wrong_key_says_to_check_it(key: str | None, code: str) -> None:
    fake = FakeMeili(key="right").start()
    meili = MeiliSearch(fake.url, key=key)
    try:
        with pytest.raises(MeiliError, match=f"{code}: .*check PAKTUM_MEILI_KEY") as caught:
            await meili.ping()
        assert caught.value.kind == "auth"
    finally:
        await meili.close()
        fake.stop()


async def test_the_key_from_settings_is_sent_as_a_bearer_token(tmp_path) -> None:
    fake = FakeMeili(key="s3cret").start()
    search = open_search(Settings(data_dir=tmp_path, search_url=fake.url, meili_key="s3cret", meili_index="pics"))
    try:
        assert isinstance(search, MeiliSearch) and search.index == "pics"
        await search.ping()
        assert {r.headers["authorization"] for r in fake.requests} == {"Bearer s3cret"}
        assert "pics" in fake.indexes
    finally:
        await search.close()
        fake.stop()


def test_open_search_refuses_an_unknown_scheme(tmp_path) -> None:
    with pytest.raises(PaktumError, match="use sqlite:///path or http"):
        open_search(Settings(data_dir=tmp_path, search_url="ftp://x"))


async def test_a_proxy_error_page_is_unavailable_with_its_status(meili: MeiliSearch, fake: FakeMeili) -> None:
    await ready(meili, fake)
    fake.script("GET", "/indexes/images/stats", 502, b"<html>Bad Gateway</html>")
    with pytest.raises(MeiliError, match="HTTP 502: <html>Bad Gateway"):
        await meili.count()


async def test_a_recorded_stats_answer_gives_the_count(meili: MeiliSearch, fake: FakeMeili) -> None:
    await ready(meili, fake)
    fake.script("GET", "/indexes/images/stats", 200, fixture("stats"))
    assert await meili.count() == 19654


async def test_a_server_that_is_down_is_unavailable_then_recovers_on_the_same_address() -> None:
    port = free_port()
    meili = MeiliSearch(f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(SearchUnavailableError, match=f"meilisearch at http://127.0.0.1:{port} is unreachable"):
        await meili.search(SearchQuery(), 5)
    with pytest.raises(SearchUnavailableError, match="unreachable"):
        await meili.add_documents([synthetic(1)])
    fake = FakeMeili().start(port)
    try:
        await meili.add_documents([synthetic(1)])
        assert (await meili.search(SearchQuery(), 5)).total == 1
        fake.stop()
        with pytest.raises(SearchUnavailableError, match="unreachable"):
            await meili.count()
        fake.start(port)
        assert await meili.count() == 1
    finally:
        await meili.close()
        fake.stop()


async def test_a_server_that_does_not_answer_in_time_is_unavailable(meili: MeiliSearch, fake: FakeMeili) -> None:
    slow = MeiliSearch(fake.url, timeout=0.2)
    fake.delay = 0.5
    try:
        with pytest.raises(SearchUnavailableError, match="did not answer GET /health in time"):
            await slow.ping()
    finally:
        fake.delay = 0
        await slow.close()


async def test_a_task_that_never_ends_times_out_as_unavailable(fake: FakeMeili) -> None:
    client = MeiliClient(fake.url, None, task_timeout=0.3)
    fake.script("GET", "/tasks/99", 200, fixture("task_processing"))
    for _ in range(50):
        fake.script("GET", "/tasks/99", 200, fixture("task_processing"))
    with pytest.raises(SearchUnavailableError, match=r"task 99 .* still processing after 0\.3s"):
        await client.wait_task({"taskUid": 99}, "a test write")
    await client.close()


async def test_an_answer_that_is_not_a_task_is_an_error(fake: FakeMeili) -> None:
    client = MeiliClient(fake.url, None)
    with pytest.raises(MeiliError, match="without a task"):
        await client.wait_task({"status": "enqueued"}, "a test write")
    await client.close()


async def test_hostile_tags_arrive_at_meilisearch_as_exactly_those_tags(meili: MeiliSearch, fake: FakeMeili) -> None:
    await ready(meili, fake)
    hostile = ('say_"cheese"', "ends\\", '" OR Tags EXISTS OR "', "x) OR (y", "日本語 タグ", "\\u{41}")
    await meili.search(SearchQuery(all_tags=hostile, none_tags=hostile, order=Order.added_asc), 5)
    [body] = fake.bodies("POST", "/indexes/images/search")
    *equals, not_in = body["filter"]
    assert [read_quoted(clause.removeprefix("Tags = ")) for clause in equals] == [(tag, "") for tag in hostile]
    assert read_quoted_list(not_in.removeprefix("NOT Tags IN ")) == list(hostile)
