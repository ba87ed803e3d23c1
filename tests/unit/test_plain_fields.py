"""GraphQL's short path for plain fields answers exactly as graphql-core's general path, errors included."""

from __future__ import annotations

import enum

import pytest
import strawberry

from paktum_api.graphql.execution import ObjectField, execution_context_class, plain_fields, prefetched


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


class Label(str):
    """A str subclass: String gives it back as it is."""


@strawberry.type
class Odd:
    flag: bool
    ratio: float
    label: str
    count: int


RESOLVED: list[str] = []  # the boxes whose `loaded` resolver ran


@strawberry.type
class Box:
    name: str
    things: list[Thing]
    first: Thing
    maybe: Thing | None = None
    loaded_value: strawberry.Private[list[Thing] | None] = None

    @strawberry.field(metadata=prefetched("loaded_value"))
    def loaded(self) -> list[Thing]:
        RESOLVED.append(self.name)
        return self.loaded_value if self.loaded_value is not None else [GOOD, GOOD]


BOXES = [
    Box(name="fetched", things=[GOOD, GOOD], first=GOOD, maybe=GOOD, loaded_value=[GOOD]),
    Box(name="unfetched", things=[], first=GOOD),
]
BROKEN_BOXES = [
    Box(name="bad item", things=[GOOD, BROKEN[1]], first=GOOD, loaded_value=[]),
    Box(name="null item", things=[GOOD, None], first=GOOD, loaded_value=[]),  # type: ignore[list-item]
    Box(name="null first", things=[], first=None, loaded_value=[]),  # type: ignore[arg-type]
    Box(name="bad loaded", things=[], first=GOOD, loaded_value=[BROKEN[0]]),
]


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return [GOOD, *BROKEN]

    @strawberry.field
    def good(self) -> Thing:
        return GOOD

    @strawberry.field
    def boxes(self) -> list[Box]:
        return BOXES

    @strawberry.field
    def fetched(self) -> list[Box]:
        return BOXES[:1]

    @strawberry.field
    def broken_boxes(self) -> list[Box | None]:
        return list(BROKEN_BOXES)

    @strawberry.field
    def odd(self) -> list[Odd]:
        return [
            Odd(flag=True, ratio=0.5, label=Label("sub"), count=-(2**31)),
            Odd(flag=1, ratio=2, label=7, count=2**31 - 1),  # type: ignore[arg-type]  # coerced as graphql-core does
        ]

    @strawberry.field
    def odd_broken(self) -> list[Odd | None]:
        return [Odd(flag=True, ratio=1.0, label="ok", count=-(2**31) - 1), Odd(flag=True, ratio="x", label="", count=0)]  # type: ignore[arg-type]


def schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    general = strawberry.Schema(query=Query)
    short = strawberry.Schema(query=Query)
    short.execution_context_class = execution_context_class(short._schema)
    return general, short


def test_the_short_path_covers_plain_fields_and_prefetched_ones() -> None:
    found = plain_fields(schemas()[1]._schema)
    things = {("Thing", n) for n in ("name", "size", "tags", "colour", "note", "maybeTags")}
    boxes = {("Box", n) for n in ("name", "things", "first", "maybe", "loaded")}
    odd = {("Odd", n) for n in ("flag", "ratio", "label", "count")}
    assert set(found) == things | boxes | odd  # not `shout` (a resolver), nor Query's fields
    assert found["Thing", "maybeTags"].attribute == "maybe_tags"
    loaded = found["Box", "loaded"]
    assert isinstance(loaded, ObjectField) and loaded.prefetched and loaded.attribute == "loaded_value"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("{ good { name size tags colour note maybeTags shout } }", id="every field"),
        pytest.param("{ things { name size tags colour note shout } }", id="broken values"),
        pytest.param("{ good { a: name b: name name @include(if: false) size @skip(if: true) } }", id="aliases"),
        pytest.param("{ good { name name ... on Thing { name tags } __typename } }", id="merged"),
        pytest.param(
            "{ boxes { name __typename things { name tags colour size } first { name } maybe { name } } }", id="objects"
        ),
        pytest.param("{ boxes { loaded { name size __typename } } }", id="prefetched or resolved"),
        pytest.param(
            "{ boxes { a: first { n: name } b: first { size } first { tags } ...F } } "
            "fragment F on Box { first { colour } things @include(if: false) { name } }",
            id="merged objects",
        ),
        pytest.param(
            "query($x: Boolean!) { boxes { things @skip(if: $x) { name } first { name @include(if: $x) } } }",
            id="directives",
        ),
        pytest.param(
            "{ brokenBoxes { name things { name size tags } first { name } loaded { name } } }", id="broken objects"
        ),
        pytest.param(
            "{ odd { flag ratio label count __typename } oddBroken { flag ratio label count } }", id="other scalars"
        ),
        pytest.param("{ __typename boxes { shout: name first { shout } } }", id="a resolver inside"),
    ],
)
async def test_answers_and_errors_are_the_general_paths(query: str) -> None:
    general, short = schemas()
    variables = {"x": True} if "$x" in query else None
    expected = await general.execute(query, variable_values=variables)
    got = await short.execute(query, variable_values=variables)
    assert got.data == expected.data
    assert [e.formatted for e in got.errors or []] == [e.formatted for e in expected.errors or []]
    assert got.data is not None
    # Each broken value still reported, with its path.
    broken = {"{ things": len(BROKEN), "{ brokenBoxes": len(BROKEN_BOXES), "{ odd ": 2}
    assert len(got.errors or []) == next((n for start, n in broken.items() if query.startswith(start)), 0)


def test_sync_execution_takes_it_too() -> None:
    general, short = schemas()
    query = "{ things { name size tags colour } }"
    assert short.execute_sync(query).data == general.execute_sync(query).data


async def test_a_prefetched_field_is_read_and_an_unfetched_one_resolved() -> None:
    _, short = schemas()
    RESOLVED.clear()
    answer = await short.execute("{ boxes { name loaded { name } } }")
    assert answer.errors is None and answer.data is not None
    assert [len(box["loaded"]) for box in answer.data["boxes"]] == [1, 2]  # the fetched value, the resolver's
    assert RESOLVED == ["unfetched"]
    RESOLVED.clear()
    answer = await short.execute("{ fetched { loaded { name size tags colour } } }")
    assert answer.errors is None and RESOLVED == []  # the whole list built on the short path


async def test_without_a_short_path_the_resolver_runs_for_every_box() -> None:
    general, _ = schemas()
    RESOLVED.clear()
    await general.execute("{ boxes { loaded { name } } }")
    assert RESOLVED == ["fetched", "unfetched"]
