"""The SearchQuery -> Meilisearch request translation, by tables, including tags built to break out of quotes."""

from __future__ import annotations

import random

import pytest

from paktum_common.contracts import Rating
from paktum_common.errors import InvalidQueryError
from paktum_common.search import NumericFilter, Order, SearchQuery
from paktum_common.search.meili_query import (
    filter_clauses,
    full_text,
    page_window,
    position_queries,
    position_runs,
    quote,
    search_request,
    tag_prefixes,
)
from tests.meili_filter_grammar import read_quoted

HOSTILE_TAGS = [
    'say_"cheese"',
    "back\\slash",
    "ends_with_backslash\\",
    '\\"',
    '\\\\"',
    '"',
    "'",
    "it's",
    "\\n",
    "\\u{41}",
    "\\x41",
    '" OR Tags EXISTS OR "',
    "x) OR (Tags EXISTS",
    "tag with spaces",
    "(parenthesis)",
    "[bracket]",
    "a,b",
    "= != < > <= >=",
    "NOT",
    "AND",
    "TO",
    "_geoRadius(1, 2, 3)",
    "日本語",
    "ﾊﾟﾝﾂ",
    "emoji_😀",
    "rtl_\u202e",
    "zero\u200bwidth",
    "new\nline",
    "",
]


@pytest.mark.parametrize("tag", HOSTILE_TAGS, ids=repr)
def test_a_quoted_tag_reads_back_exactly_and_ends_where_it_should(tag: str) -> None:
    literal = quote(tag)
    value, rest = read_quoted(literal + " AND Rating = safe")
    assert value == tag
    assert rest == " AND Rating = safe"


def test_random_strings_over_the_dangerous_alphabet_round_trip() -> None:
    rng = random.Random(7)
    alphabet = ['"', "\\", "'", " ", "(", ")", "[", "]", ",", "n", "u", "{", "}", "x", "é", "\n"]
    for _ in range(2000):
        tag = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert read_quoted(quote(tag) + "]") == (tag, "]")


@pytest.mark.parametrize(
    ("query", "clauses"),
    [
        (SearchQuery(), []),
        (SearchQuery(all_tags=("cat_ears",)), ['Tags = "cat_ears"']),
        (SearchQuery(all_tags=("a", "b")), ['Tags = "a"', 'Tags = "b"']),
        (SearchQuery(none_tags=("dog",)), ['NOT Tags IN ["dog"]']),
        (SearchQuery(none_tags=("dog", "cat")), ['NOT Tags IN ["dog", "cat"]']),
        (SearchQuery(any_tags=("dog", "duo")), ['Tags IN ["dog", "duo"]']),
        (SearchQuery(prefixes=("cat",)), ['TagPrefixes = "cat"']),
        (
            SearchQuery(prefixes=("s",), none_prefixes=("sm", "x")),
            ['TagPrefixes = "s"', 'NOT TagPrefixes IN ["sm", "x"]'],
        ),
        (SearchQuery(ratings=(Rating.safe,)), ['Rating IN ["safe"]']),
        (SearchQuery(ratings=(Rating.safe, Rating.questionable)), ['Rating IN ["safe", "questionable"]']),
        (SearchQuery(numeric=(NumericFilter("width", ">", 1000),)), ["Width > 1000"]),
        (SearchQuery(numeric=(NumericFilter("height", "<=", 5),)), ["Height <= 5"]),
        (SearchQuery(numeric=(NumericFilter("size", "=", 0),)), ["Size = 0"]),
        (SearchQuery(numeric=(NumericFilter("added", ">=", 1_700_000_000),)), ["AddedTs >= 1700000000"]),
        (SearchQuery(numeric=(NumericFilter("added", "<", -5),)), ["AddedTs < -5"]),
        (SearchQuery(words=("blue",)), []),  # words go to q, never to the filter
        (SearchQuery(order=Order.added_desc), []),
        (
            SearchQuery(all_tags=('a"b',), none_tags=("c\\",), any_tags=("x y", "(z)"), ratings=(Rating.explicit,)),
            ['Tags = "a\\"b"', 'NOT Tags IN ["c\\\\"]', 'Tags IN ["x y", "(z)"]', 'Rating IN ["explicit"]'],
        ),
        (
            SearchQuery(all_tags=('" OR Tags EXISTS OR "',)),
            ['Tags = "\\" OR Tags EXISTS OR \\""'],
        ),
    ],
    ids=[
        "empty", "tag", "two-tags", "not", "not-two", "any", "prefix", "prefix-and-not-prefixes", "rating",
        "ratings", "width", "height", "size", "added", "negative-number", "words-only", "order-only",
        "hostile-mix", "injection-attempt",
    ],
)  # fmt: skip
def test_filter_clauses(query: SearchQuery, clauses: list[str]) -> None:
    assert filter_clauses(query) == clauses


@pytest.mark.parametrize("tag", HOSTILE_TAGS, ids=repr)
def test_each_hostile_tag_is_one_whole_value_in_every_clause_kind(tag: str) -> None:
    query = SearchQuery(all_tags=(tag,), none_tags=(tag,), any_tags=(tag, "ok"))
    equal, not_in, any_in = filter_clauses(query)
    assert read_quoted(equal.removeprefix("Tags = ")) == (tag, "")
    assert read_quoted(not_in.removeprefix("NOT Tags IN [")) == (tag, "]")
    assert read_quoted(any_in.removeprefix("Tags IN [")) == (tag, ', "ok"]')


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (SearchQuery(prefixes=("",)), "empty prefix"),
        (SearchQuery(none_prefixes=("",)), "empty excluded prefix"),
    ],
    ids=["empty-prefix", "empty-none-prefix"],
)
def test_untranslatable_queries_say_why(query: SearchQuery, message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        filter_clauses(query)


@pytest.mark.parametrize(
    ("words", "q"),
    [
        ((), ""),
        (("cat",), '"cat"'),
        (("cat", "ears"), '"cat" "ears"'),
        (("blue sky",), '"blue sky"'),
        (('say "hi"',), '"say hi"'),
        (('"',), ""),
        (("  spaced   out ",), '"spaced out"'),
        (("日本語",), '"日本語"'),
        (tuple("abcdefghij"), " ".join(f'"{c}"' for c in "abcdefghij")),
    ],
    ids=["none", "one", "two", "phrase", "inner-quotes", "only-a-quote", "whitespace", "non-ascii", "ten-words"],
)
def test_full_text(words: tuple[str, ...], q: str) -> None:
    assert full_text(words) == q


def test_more_words_than_meilisearch_reads_are_refused() -> None:
    with pytest.raises(InvalidQueryError, match="at most 10 full-text words per search, got 11"):
        full_text(("a b c d e f", "g h i j k"))


@pytest.mark.parametrize(
    ("limit", "offset", "window"),
    [
        (10, 0, (1, 10, 0)),
        (10, 10, (2, 10, 0)),
        (10, 20, (3, 10, 0)),
        (10, 5, (1, 15, 5)),
        (1, 0, (1, 1, 0)),
        (1, 999, (1000, 1, 0)),
        (3, 1, (1, 4, 1)),
        (5, 7, (2, 6, 1)),
        (0, 0, (1, 0, 0)),
        (0, 50, (1, 0, 0)),
    ],
)
def test_page_window_covers_exactly_the_asked_hits(limit: int, offset: int, window: tuple[int, int, int]) -> None:
    assert page_window(limit, offset) == window


def test_page_window_always_covers_the_window() -> None:
    for limit in range(1, 30):
        for offset in range(0, 200):
            page, size, skip = page_window(limit, offset)
            start = (page - 1) * size
            assert start + skip == offset and skip + limit <= size, (limit, offset)


def test_page_window_refuses_negatives() -> None:
    with pytest.raises(InvalidQueryError):
        page_window(-1, 0)
    with pytest.raises(InvalidQueryError):
        page_window(1, -1)


@pytest.mark.parametrize(
    ("positions", "runs"),
    [([], []), ([5], [(5, 1)]), ([3, 1, 2], [(1, 3)]), ([9, 1, 2, 7, 2], [(1, 2), (7, 1), (9, 1)])],
)
def test_position_runs(positions: list[int], runs: list[tuple[int, int]]) -> None:
    assert position_runs(positions) == runs


@pytest.mark.parametrize(
    ("tags", "prefixes"),
    [([], []), (["ab"], ["a", "ab"]), (["cat", "car"], ["c", "ca", "cat", "car"]), (["日本"], ["日", "日本"])],
)
def test_tag_prefixes(tags: list[str], prefixes: list[str]) -> None:
    assert tag_prefixes(tags) == prefixes


FIELDS = ("ID", "Tags")


@pytest.mark.parametrize(
    ("query", "limit", "offset", "body", "skip"),
    [
        (SearchQuery(), 10, 0, {"attributesToRetrieve": ["ID", "Tags"], "page": 1, "hitsPerPage": 10}, 0),
        (
            SearchQuery(all_tags=("cat",), words=("blue sky",), order=Order.added_desc),
            5,
            7,
            {
                "q": '"blue sky"',
                "matchingStrategy": "all",
                "filter": ['Tags = "cat"'],
                "sort": ["AddedTs:desc"],
                "attributesToRetrieve": ["ID", "Tags"],
                "page": 2,
                "hitsPerPage": 6,
            },
            1,
        ),
        (
            SearchQuery(ratings=(Rating.general,), order=Order.added_asc),
            2,
            0,
            {
                "filter": ['Rating IN ["general"]'],
                "sort": ["AddedTs:asc"],
                "attributesToRetrieve": ["ID", "Tags"],
                "page": 1,
                "hitsPerPage": 2,
            },
            0,
        ),
    ],
    ids=["everything", "words-tags-newest-first-offset", "rating-oldest-first"],
)
def test_search_request(query: SearchQuery, limit: int, offset: int, body: dict[str, object], skip: int) -> None:
    assert search_request(query, limit, offset, FIELDS) == (body, skip)


def test_position_queries_repeat_the_query_for_each_run() -> None:
    queries = position_queries("images", SearchQuery(all_tags=("t",)), [4, 9, 5], FIELDS)
    shared = {"indexUid": "images", "filter": ['Tags = "t"'], "attributesToRetrieve": ["ID", "Tags"]}
    assert queries == [{**shared, "offset": 4, "limit": 2}, {**shared, "offset": 9, "limit": 1}]
