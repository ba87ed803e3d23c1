"""Related images as the GraphQL loader nests them: order kept, distances carried, vanished members left out."""

import pytest

from paktum_api.graphql.context import nest_related
from paktum_common.contracts import ImageDocument, Rating
from paktum_common.groups import Related


def doc(image_id: str) -> ImageDocument:
    return ImageDocument(
        ID=image_id, Tags=["t"], Tagstring="t", Rating=Rating.safe, Added="1",
        PHash=1, Size=1, Width=1, Height=1, Filename=f"{image_id}.jpg",
    )  # fmt: skip


A, B, C, D = (c * 32 for c in "abcd")


@pytest.mark.parametrize(
    ("ids", "groups", "present", "expected"),
    [
        ([A], {A: []}, [], [[]]),
        ([A], {}, [], [[]]),
        ([A, B], {A: [(B, 2), (C, 7)], B: [(A, 2), (C, 5)]}, [A, B, C], [[(B, 2), (C, 7)], [(A, 2), (C, 5)]]),
        ([A], {A: [(C, 1), (B, 3)]}, [B, C], [[(C, 1), (B, 3)]]),
        ([A, D], {A: [(B, 1), (C, 4)], D: []}, [C], [[(C, 4)], []]),
    ],
    ids=["no group", "unknown to groups", "two images one batch", "nearest first kept", "deleted member skipped"],
)
def test_nest_related(
    ids: list[str],
    groups: dict[str, list[tuple[str, int]]],
    present: list[str],
    expected: list[list[tuple[str, int]]],
) -> None:
    related = {
        i: [Related(other, bits, "mirror" if bits % 2 else "none") for other, bits in g] for i, g in groups.items()
    }
    nested = nest_related(ids, related, {i: doc(i) for i in present})
    assert [[(d.ID, r.distance) for d, r in found] for found in nested] == expected
    assert all(r.transform == ("mirror" if r.distance % 2 else "none") for found in nested for _, r in found)
