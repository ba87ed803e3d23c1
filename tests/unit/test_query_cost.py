"""GraphQL query pricing: a field costs 1 plus its sub-selection times its `limit` (or the Related weight)."""

import pytest

from paktum_api.limits import LIMIT_MAX, RELATED_WEIGHT, query_cost

CASES = [
    ("{ randomImage { ID } }", {}, 1 + 1),
    ("{ randomImage { ID Url Tags } }", {}, 1 + 3),
    ("{ randomImage { ID Related { ID Url } } }", {}, 1 + (1 + 1 + RELATED_WEIGHT * 2)),
    ('{ searchImages(query: "a", limit: 10) { ID Url } }', {}, 1 + 10 * 2),
    ('{ searchImages(query: "a", limit: 10) { ID Related { ID } } }', {}, 1 + 10 * (1 + 1 + RELATED_WEIGHT)),
    ('query($n: Int!) { searchImages(query: "a", limit: $n) { ID } }', {"n": 7}, 1 + 7),
    ('query($n: Int!) { searchImages(query: "a", limit: $n) { ID } }', {}, 1 + LIMIT_MAX),
    ('{ searchImages(query: "a", limit: 100000) { ID } }', {}, 1 + LIMIT_MAX),
    ('{ searchImages(query: "a", limit: -5) { ID } }', {}, 1 + 1),
    ("{ a: randomImage { ID } b: randomImage { ID } }", {}, 2 * 2),
    ('{ imageSearch(query: "a", limit: 4) { Total Images { ID } } }', {}, 1 + 4 * (1 + 1 + 1)),
    ("fragment F on Image { ID Url } { randomImage { ...F } }", {}, 1 + 2),
    ("{ randomImage { ... on Image { ID } } }", {}, 1 + 1),
    ("{ __typename }", {}, 1),
    ("query A { randomImage { ID } } query B { randomImage { ID Url Tags } }", {}, 1 + 3),
]


@pytest.mark.parametrize(("query", "variables", "cost"), CASES, ids=[q[:60] for q, _, _ in CASES])
def test_query_cost(query: str, variables: dict[str, int], cost: int) -> None:
    assert query_cost(query, variables) == cost
