"""GraphQL document limits: each bomb is refused by the limit meant for it, in time linear in the document."""

from __future__ import annotations

import pytest
from graphql import GraphQLError, get_introspection_query

from paktum_api.limits import (
    MAX_ALIASES,
    MAX_DIRECTIVES,
    MAX_DOCUMENT_CHARS,
    MAX_FRAGMENTS,
    MAX_OPERATIONS,
    MAX_REPEATS,
    DocumentLimits,
    check_document,
    parse_document,
    query_cost,
)

LIMITS = DocumentLimits()


def fragment_bomb(levels: int) -> str:
    """F0 spreads F1 twice, F1 spreads F2 twice, ...: 2^levels spreads, no cycle, well under 2 KB."""
    chain = " ".join(f"fragment F{n} on Image {{ ...F{n + 1} ...F{n + 1} }}" for n in range(levels))
    return "{ randomImage { ...F0 } } " + chain + f" fragment F{levels} on Image {{ ID }}"


def refusal(text: str, variables: dict[str, object] | None = None) -> str:
    refused = check_document(parse_document(text, LIMITS.max_tokens), variables, LIMITS)
    assert refused is not None, text[:80]
    return refused.message


# Whole-run bound only (pytest-timeout): walking every spread of these would take longer than the universe.
@pytest.mark.timeout(20)
@pytest.mark.parametrize("levels", [30, 60])
def test_a_fragment_bomb_is_priced_once_per_fragment(levels: int) -> None:
    text = fragment_bomb(levels)
    assert len(text) < 3000
    assert query_cost(text) == 1 + 2**levels  # exact: each fragment's figure reused at every spread
    assert "query cost" in refusal(text)


@pytest.mark.timeout(20)
def test_a_fragment_bomb_under_the_cost_limit_is_measured_once_for_depth() -> None:
    # Depth is the same memo: 60 levels of spreads that each add one field level.
    chain = " ".join(f"fragment F{n} on Image {{ Related {{ ...F{n + 1} ...F{n + 1} }} }}" for n in range(60))
    text = "{ randomImage { ...F0 } } " + chain + " fragment F60 on Image { ID }"
    assert "exceeds maximum operation depth of 8" in refusal(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (" ".join(f"query q{n} {{ __typename }}" for n in range(MAX_OPERATIONS + 1)), "operations in one document"),
        (
            "{ randomImage { ...F0 } } "
            + " ".join(f"fragment F{n} on Image {{ ID ...F{n + 1} }}" for n in range(MAX_FRAGMENTS))
            + f" fragment F{MAX_FRAGMENTS} on Image {{ ID }}",
            "fragments in one document",
        ),
        ("{ " + " ".join(f"a{n}: __typename" for n in range(MAX_ALIASES + 1)) + " }", "aliases found"),
        ("{ randomImage {" + " ID" * (MAX_REPEATS + 1) + " } }", "'ID' is asked for 11 times"),
        ("{ a: __typename" + " a: __typename" * MAX_REPEATS + " }", "is asked for"),
        # Spread into one selection: 64 fragments of 10 IDs cost little, but graphql-core compares 640^2 pairs.
        (
            "{ randomImage { "
            + " ".join(f"...F{n}" for n in range(64))
            + " } } "
            + " ".join(f"fragment F{n} on Image {{ {'ID ' * 10}}}" for n in range(64)),
            "'ID' is asked for 640 times in one selection (fragments included)",
        ),
        ("{ randomImage { ID ... on Image { ID ... on Image { " + "ID " * 9 + "} } } }", "asked for 11 times"),
        ("{ __typename" + " @skip(if: false)" * (MAX_DIRECTIVES + 1) + " }", "directives in one document"),
        ("{ randomImage" + " { Related" * 9 + " { ID" + " }" * 11, "exceeds maximum operation depth of 8"),
        ('{ searchImages(query: "a", limit: 100) { Related { Related { ID Url Tags } } } }', "query cost"),
        # A literal too long for int() is priced at the maximum (validation then refuses it as no Int).
        ('{ a: searchImages(query: "a", limit: ' + "9" * 5000 + ") { Related { Related { ID Url } } } }", "query cost"),
    ],
    ids=[
        "operations",
        "fragments",
        "aliases",
        "repeats",
        "repeated-alias",
        "repeats-by-fragments",
        "repeats-by-inline-fragments",
        "directives",
        "depth",
        "cost",
        "long-int",
    ],
)
def test_each_limit_refuses_with_its_reason(text: str, reason: str) -> None:
    assert reason in refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        get_introspection_query(descriptions=True, input_value_deprecation=True),
        '{ a: searchImages(query: "cat", limit: 50) { ID Url Related { ID } } b: randomImage { ID } }',
        "query A { randomImage { ID } } query B { randomImage { ...F } } fragment F on Image { ID Tags }",
        "{ randomImage { ID @include(if: true) Url @skip(if: false) } }",
        "{ randomImage { ID ID Url } }",  # a repeat or two is ordinary (fragments overlap)
    ],
    ids=["introspection", "aliases", "operations-and-fragment", "directives", "small-repeat"],
)
def test_ordinary_documents_pass(text: str) -> None:
    assert check_document(parse_document(text, LIMITS.max_tokens), {}, LIMITS) is None


@pytest.mark.parametrize(
    "text",
    [
        "{" + " __typename" * 10_000 + " }",  # 10,000 copies of a field
        "{ " + " ".join(f"a{n}: __typename" for n in range(100_000)) + " }",  # 100,000 aliases
        " ".join(f"query q{n} {{ __typename }}" for n in range(5_000)),  # 5,000 operations
        "{ __typename" + " @skip(if: false)" * 10_000 + " }",  # 10,000 directives
    ],
    ids=["copies", "aliases", "operations", "directives"],
)
def test_a_flood_is_refused_before_the_parser_starts(text: str) -> None:
    with pytest.raises(GraphQLError, match=f"characters long, at most {MAX_DOCUMENT_CHARS}"):
        parse_document(text, LIMITS.max_tokens)


def test_the_parser_stops_at_its_token_budget() -> None:
    text = "{" + " a" * (LIMITS.max_tokens + 1) + " }"
    assert len(text) < MAX_DOCUMENT_CHARS
    with pytest.raises(GraphQLError, match=f"more than {LIMITS.max_tokens} tokens"):
        parse_document(text, LIMITS.max_tokens)


def test_a_document_too_deep_to_parse_is_refused_with_a_reason() -> None:
    # graphql-core's own nesting guard or ours (on a RecursionError): a GraphQL error either way, not a crash.
    with pytest.raises(GraphQLError, match="nested too deeply"):
        parse_document("{ randomImage" + " { Related" * 600 + " { ID" + " }" * 602, 100_000)
