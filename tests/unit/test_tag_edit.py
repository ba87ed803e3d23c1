"""An owner's edit as a value: which tags may be set, how two edits combine, and what one does to a document."""

from __future__ import annotations

import pytest

from paktum_common.contracts import Rating, TagEdit, edited_tag
from paktum_common.errors import InvalidEditError
from tests.documents import synthetic


@pytest.mark.parametrize(
    ("raw", "tag"),
    [("Cat Ears", "cat_ears"), ("  solo ", "solo"), ("re:zero", "re:zero"), ("日本語", "日本語"), ("a-b~c", "a-b~c")],
    ids=["spaces", "trimmed", "colon", "unicode", "inner-signs"],
)
def test_tags_are_normalised_like_scraped_ones(raw: str, tag: str) -> None:
    assert edited_tag(raw) == tag


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "-dog", "~dog", "do*g", "a,b", 'say_"x"', "rating:s", "Width:100", "order:added", "x" * 201],
    ids=["empty", "blank", "minus", "tilde", "star", "comma", "quote", "rating", "width", "order", "long"],
)
def test_tags_the_search_language_could_not_find_are_refused(raw: str) -> None:
    with pytest.raises(InvalidEditError):
        edited_tag(raw)


def test_a_later_edit_wins_where_they_disagree() -> None:
    first = TagEdit(add=("a", "b"), remove=("c",), rating=Rating.safe)
    later = TagEdit(add=("c",), remove=("b",))
    assert first.then(later) == TagEdit(add=("a", "c"), remove=("b",), rating=Rating.safe)
    assert first.then(TagEdit(rating=Rating.explicit)).rating is Rating.explicit


def test_an_edit_applies_over_whatever_tags_a_document_came_with() -> None:
    doc = synthetic(1, "x y z", rating=Rating.general)
    edited = TagEdit(add=("w", "x"), remove=("y",), rating=Rating.questionable).apply(doc)
    assert (edited.Tags, edited.Tagstring, edited.Rating) == (["x", "z", "w"], "x z w", Rating.questionable)
    assert TagEdit(add=("x",), remove=("absent",)).apply(doc) is doc  # nothing to change: the same document
    assert TagEdit.from_redis(TagEdit(add=("a",), rating=Rating.safe).to_redis()) == TagEdit(
        add=("a",), rating=Rating.safe
    )
