"""The backend-neutral search query, parsed once from what a user typed."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

from paktum_common.errors import BadPostError, InvalidQueryError
from paktum_common.models import Rating


class Order(enum.StrEnum):
    random = "random"
    added_desc = "-added"
    added_asc = "added"


NumericField = Literal["width", "height", "size", "added"]
Comparison = Literal["<", "<=", ">", ">=", "="]


@dataclass(frozen=True)
class NumericFilter:
    """`width:>1000` is NumericFilter("width", ">", 1000); `added` is in UNIX seconds."""

    field: NumericField
    op: Comparison
    value: int


@dataclass(frozen=True)
class SearchQuery:
    """What to find; each backend translates it into its own request. Tags are matched whole."""

    all_tags: tuple[str, ...] = ()  # every one of these tags
    none_tags: tuple[str, ...] = ()  # none of these tags
    any_tags: tuple[str, ...] = ()  # at least one of these tags (`~a ~b`)
    prefixes: tuple[str, ...] = ()  # for each prefix, some tag starting with it (`tag*`)
    none_prefixes: tuple[str, ...] = ()  # no tag starting with any of these (`-tag*`)
    ratings: tuple[Rating, ...] = ()  # any of these ratings; empty: all ratings
    numeric: tuple[NumericFilter, ...] = ()  # all of these comparisons
    words: tuple[str, ...] = ()  # full-text words, all of them (`"blue sky"`)
    order: Order = Order.random


_SEPARATORS = re.compile(r"[\s,]+")


def parse_query(text: str) -> SearchQuery:
    """`tag1 tag2` (all of them), `-tag` (not), `rating:safe` or `rating:s,q`, `order:added|-added|random`.

    Commas separate terms like spaces do, so the REST `query=a,b` form parses the same way.
    """
    all_tags: list[str] = []
    none_tags: list[str] = []
    ratings: list[Rating] = []
    order = Order.random
    terms = [t for t in _SEPARATORS.split(text.strip().lower()) if t]
    # `rating:s,q` arrives split by the comma rule; a bare rating letter right after belongs to it.
    index = 0
    while index < len(terms):
        term = terms[index]
        index += 1
        if term.startswith("rating:"):
            values = [term.removeprefix("rating:")]
            while index < len(terms) and terms[index] in _RATING_WORDS:
                values.append(terms[index])
                index += 1
            for value in values:
                try:
                    ratings.append(Rating.parse(value))
                except BadPostError:
                    raise InvalidQueryError(f"unknown rating {value!r} in {term!r}") from None
        elif term.startswith("order:"):
            value = term.removeprefix("order:")
            try:
                order = Order(value)
            except ValueError:
                raise InvalidQueryError(f"unknown order {value!r} in {term!r} (use added, -added or random)") from None
        elif term.startswith("-"):
            if len(term) == 1:
                raise InvalidQueryError("'-' must be followed by a tag")
            none_tags.append(term[1:])
        else:
            all_tags.append(term)
    return SearchQuery(
        all_tags=tuple(dict.fromkeys(all_tags)),
        none_tags=tuple(dict.fromkeys(none_tags)),
        ratings=tuple(dict.fromkeys(ratings)),
        order=order,
    )


_RATING_WORDS = {"g", "s", "q", "e", "general", "safe", "sensitive", "questionable", "explicit"}
