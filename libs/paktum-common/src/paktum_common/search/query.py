"""The backend-neutral search query, parsed once from what a user typed."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Literal, get_args

from paktum_common.contracts import Rating
from paktum_common.errors import BadPostError, InvalidQueryError


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


# Bounds that keep one query's cost predictable on every backend (each term is a sub-select in SQLite).
MAX_TERMS = 40
MAX_TERM_LENGTH = 200
MAX_NUMBER = 2**63 - 1  # every backend stores these as signed 64-bit integers
_NUMERIC_FIELDS: tuple[str, ...] = get_args(NumericField)
# Longest operators first, so `>=` is not read as `>` followed by `=1000`.
_OPERATORS: tuple[Comparison, ...] = ("<=", ">=", "<", ">", "=")
_SEPARATORS = " \t\r\n\f\v,"


@dataclass(frozen=True)
class _Term:
    text: str
    position: int  # 1-based character position in what the user typed, for error messages
    quoted: bool = False
    after_comma: bool = False  # `rating:s,q`: a bare rating right after a comma belongs to the rating term


def _fail(term: _Term, reason: str) -> InvalidQueryError:
    shown = f'"{term.text}"' if term.quoted else repr(term.text)
    return InvalidQueryError(f"{shown} at character {term.position}: {reason}")


def _tokenize(text: str) -> list[_Term]:
    terms: list[_Term] = []
    index = 0
    comma = False
    while index < len(text):
        char = text[index]
        if char in _SEPARATORS:
            comma = char == ","
            index += 1
            continue
        start = index
        if char == '"':
            end = text.find('"', index + 1)
            if end < 0:
                raise InvalidQueryError(f"unclosed quote at character {start + 1}: add the closing '\"'")
            terms.append(_Term(text[index + 1 : end], start + 1, quoted=True, after_comma=comma))
            index = end + 1
        else:
            while index < len(text) and text[index] not in _SEPARATORS:
                if text[index] == '"':
                    raise InvalidQueryError(
                        f"a quote must start a term, found one inside {text[start : index + 1]!r} "
                        f"(at character {index + 1})"
                    )
                index += 1
            terms.append(_Term(text[start:index], start + 1, after_comma=comma))
        comma = False
    return terms


class _Builder:
    """Collects the parts of a query term by term; `build` makes the frozen SearchQuery."""

    def __init__(self, default_order: Order) -> None:
        self.all_tags: list[str] = []
        self.none_tags: list[str] = []
        self.any_tags: list[str] = []
        self.prefixes: list[str] = []
        self.none_prefixes: list[str] = []
        self.ratings: list[Rating] = []
        self.numeric: list[NumericFilter] = []
        self.words: list[str] = []
        self.order: Order | None = None
        self.default_order = default_order

    def build(self) -> SearchQuery:
        def once(items: list[str]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(items))

        return SearchQuery(
            all_tags=once(self.all_tags),
            none_tags=once(self.none_tags),
            any_tags=once(self.any_tags),
            prefixes=once(self.prefixes),
            none_prefixes=once(self.none_prefixes),
            ratings=tuple(dict.fromkeys(self.ratings)),
            numeric=tuple(dict.fromkeys(self.numeric)),
            words=once(self.words),
            order=self.order or self.default_order,
        )


def parse_query(text: str, default_order: Order = Order.random) -> SearchQuery:
    """Parse the search language into a SearchQuery; InvalidQueryError names the bad term and where it is.

    `tag1 tag2` all of them; `-tag` none; `~a ~b` at least one; `tag*` some tag with that prefix;
    `-tag*` no tag with it; `rating:safe` or `rating:s,q`; `order:added|-added|random`;
    `width:>1000` (also height, size in bytes, added in UNIX seconds; `<`, `<=`, `>`, `>=`, `=`);
    `"blue sky"` full-text words. Commas separate terms like spaces do, so the REST `query=a,b` form
    parses the same way. `default_order` applies when the text has no `order:` term.
    """
    terms = _tokenize(text)
    if len(terms) > MAX_TERMS:
        raise InvalidQueryError(f"too many terms: {len(terms)}, at most {MAX_TERMS}")
    query = _Builder(default_order)
    index = 0
    while index < len(terms):
        term = terms[index]
        index += 1
        if len(term.text) > MAX_TERM_LENGTH:
            raise _fail(replace(term, text=term.text[:40] + "..."), f"a term is at most {MAX_TERM_LENGTH} characters")
        if term.quoted:
            words = term.text.lower().split()
            if not words:
                raise _fail(term, "empty quotes: put the words to look for between them")
            query.words.extend(words)
            continue
        key, colon, value = term.text.lower().partition(":")
        if colon and key == "rating":
            # `rating:s,q` arrives split by the comma rule; bare ratings right after a comma belong to it.
            values = [value]
            while index < len(terms) and terms[index].after_comma and _is_rating(terms[index]):
                values.append(terms[index].text.lower())
                index += 1
            query.ratings.extend(_ratings(term, values))
        elif colon and key == "order":
            if query.order is not None:
                raise _fail(term, "the order is given twice")
            try:
                query.order = Order(value)
            except ValueError:
                raise _fail(term, f"unknown order {value!r} (use added, -added or random)") from None
        elif colon and key in _NUMERIC_FIELDS:
            query.numeric.append(_numeric(term, key, value))
        elif colon and key.lstrip("-~") in ("rating", "order", *_NUMERIC_FIELDS):
            raise _fail(term, f"'{key[0]}' cannot be used with {key.lstrip('-~')}:")
        else:
            _tag_term(query, term)
    return query.build()


def _is_rating(term: _Term) -> bool:
    return not term.quoted and term.text.lower() in _RATING_WORDS


def _ratings(term: _Term, values: list[str]) -> list[Rating]:
    ratings = []
    for value in values:
        if not value:
            raise _fail(term, "rating: needs a rating (general, safe, questionable, explicit or g, s, q, e)")
        try:
            ratings.append(Rating.parse(value))
        except BadPostError:
            raise _fail(term, f"unknown rating {value!r} (use general, safe, questionable, explicit)") from None
    return ratings


def _numeric(term: _Term, field: str, value: str) -> NumericFilter:
    op: Comparison = "="
    for candidate in _OPERATORS:
        if value.startswith(candidate):
            op, value = candidate, value.removeprefix(candidate)
            break
    if not value.isascii() or not value.isdigit():
        raise _fail(term, f"{field}: needs a whole number, optionally after <, <=, >, >= or = (like {field}:>1000)")
    number = int(value)  # at most MAX_TERM_LENGTH digits, so this is cheap
    if number > MAX_NUMBER:
        raise _fail(term, f"{field}: {value} is out of range (at most {MAX_NUMBER})")
    return NumericFilter(field, op, number)  # type: ignore[arg-type]  # field is one of _NUMERIC_FIELDS


def _tag_term(query: _Builder, term: _Term) -> None:
    tag = term.text.lower()
    negated = tag.startswith("-")
    either = tag.startswith("~")
    tag = tag[1:] if negated or either else tag
    prefix = tag.endswith("*")
    tag = tag.removesuffix("*")
    if not tag:
        raise _fail(term, f"'{term.text}' must be followed by a tag" if term.text in "-~" else "a tag is missing")
    if tag[0] in "-~":
        raise _fail(term, f"'{term.text[0]}' can be used once before a tag")
    if "*" in tag:
        raise _fail(term, "'*' is only allowed at the end of a tag")
    if either and prefix:
        raise _fail(term, "'~' and '*' cannot be combined")
    if negated:
        (query.none_prefixes if prefix else query.none_tags).append(tag)
    elif either:
        query.any_tags.append(tag)
    else:
        (query.prefixes if prefix else query.all_tags).append(tag)


_RATING_WORDS = {"g", "s", "q", "e", "general", "safe", "sensitive", "questionable", "explicit"}
