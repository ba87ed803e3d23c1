"""GraphQL's short path for plain fields answers exactly as graphql-core's general path, errors included."""

from __future__ import annotations

import enum

import pytest
import strawberry

from paktum_api.graphql.execution import execution_context_class, plain_fields


@strawberry.enum
class Colour(enum.Enum):
    red = "red"
    blue = "blue"


@strawberry.type
class Thing:
    name: str
    size: int
    tags: list[str]
    colour: Colour
    note: str | None = None
    maybe_tags: list[str] | None = None

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


GOOD = Thing(name="cat", size=3, tags=["a", "b"], colour=Colour.red, note="n", maybe_tags=None)
BROKEN = [
    Thing(name=None, size=1, tags=[], colour=Colour.blue),  # type: ignore[arg-type]  # null in a non-null field
    Thing(name="big", size=2**40, tags=[], colour=Colour.blue),  # beyond GraphQL's 32-bit Int
    Thing(name="hole", size=1, tags=["a", None], colour=Colour.blue),  # type: ignore[list-item]
    Thing(name="odd", size=1, tags=[], colour="green"),  # type: ignore[arg-type]  # not an enum member
    Thing(name="text", size=1, tags="abc", colour=Colour.red),  # type: ignore[arg-type]  # a string, not a list
    Thing(name="float", size=1.5, tags=[], colour=Colour.red),  # type: ignore[arg-type]
]


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return [GOOD, *BROKEN]

    @strawberry.field
    def good(self) -> Thing:
        return GOOD


def schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    general = strawberry.Schema(query=Query)
    short = strawberry.Schema(query=Query)
    short.execution_context_class = execution_context_class(short._schema)
    return general, short


def test_the_short_path_covers_plain_leaf_fields_only() -> None:
    found = plain_fields(schemas()[1]._schema)
    assert set(found) == {("Thing", n) for n in ("name", "size", "tags", "colour", "note", "maybeTags")}
    assert found["Thing", "maybeTags"].attribute == "maybe_tags"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("{ good { name size tags colour note maybeTags shout } }", id="every field"),
        pytest.param("{ things { name size tags colour note shout } }", id="broken values"),
        pytest.param("{ good { a: name b: name name @include(if: false) size @skip(if: true) } }", id="aliases"),
        pytest.param("{ good { name name ... on Thing { name tags } __typename } }", id="merged"),
    ],
)
async def test_answers_and_errors_are_the_general_paths(query: str) -> None:
    general, short = schemas()
    expected, got = await general.execute(query), await short.execute(query)
    assert got.data == expected.data
    assert [e.formatted for e in got.errors or []] == [e.formatted for e in expected.errors or []]
    assert got.data is not None
    if "things" in query:
        assert len(got.errors or []) == len(BROKEN)  # each broken value still reported, with its path


def test_sync_execution_takes_it_too() -> None:
    general, short = schemas()
    query = "{ things { name size tags colour } }"
    assert short.execute_sync(query).data == general.execute_sync(query).data
