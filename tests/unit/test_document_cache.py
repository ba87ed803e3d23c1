"""Remembered GraphQL documents: bounded, least recently used first out, priced by the variables the cost reads."""

from __future__ import annotations

import pytest

from paktum_api.limits import (
    LIMIT_MAX,
    MAX_CACHED_CHARS,
    DocumentCache,
    cost_variables,
    parse_document,
    parse_for_cache,
)


def test_the_cache_keeps_the_most_recently_used_documents_up_to_its_size() -> None:
    cache = DocumentCache(size=2)
    for text in ("{ a }", "{ b }"):
        cache.put(text, parse_for_cache(text, 100))
    assert cache.get("{ a }") is not None  # now the most recent: "{ b }" goes first
    cache.put("{ c }", parse_for_cache("{ c }", 100))
    assert len(cache) == 2
    assert cache.get("{ b }") is None
    assert cache.get("{ a }") is not None and cache.get("{ c }") is not None


def test_a_long_document_is_not_remembered() -> None:
    cache = DocumentCache()
    text = "{ a" + " " * MAX_CACHED_CHARS + "}"
    cache.put(text, parse_for_cache(text, 100))
    assert cache.get(text) is None and len(cache) == 0


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param('{ searchImages(query: "", limit: 5) { ID } }', (), id="literal limit"),
        pytest.param('query ($n: Int!) { searchImages(query: "", limit: $n) { ID } }', ("n",), id="variable"),
        pytest.param(
            "query ($q: String!, $n: Int) { a: searchImages(query: $q, limit: $n) { ID } ...F }"
            " fragment F on Query { tags(prefix: $q, limit: $m) { Name } }",
            ("m", "n"),
            id="fragment too, only limits",
        ),
    ],
)
def test_cost_variables_are_those_given_to_a_limit(text: str, names: tuple[str, ...]) -> None:
    assert cost_variables(parse_document(text, 1000)) == names


def test_the_outcome_key_prices_limits_as_the_cost_does() -> None:
    parsed = parse_for_cache('query ($n: Int) { searchImages(query: "", limit: $n) { ID } }', 1000)
    # Out of range and missing are priced at the bound, as _multiplier does: one remembered outcome for them.
    assert parsed.outcome_key({"n": 5}) == (5,)
    assert parsed.outcome_key({"n": 10**9}) == parsed.outcome_key({}) == parsed.outcome_key(None) == (LIMIT_MAX,)
    assert parsed.outcome_key({"n": -3}) == (1,)
    assert parsed.outcome_key({"n": "5"}) == (LIMIT_MAX,)
