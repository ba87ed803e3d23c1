"""The pure translation of a backend-neutral SearchQuery into Meilisearch search request bodies.

Nothing here does I/O, so every rule is tested by tables. The grammar it writes to is Meilisearch's
filter syntax (1.4 or newer): a value in double quotes may hold any character; a backslash and a
double quote inside it are escaped with a backslash. The filter is sent in the array form, whose
elements Meilisearch ANDs, so no clause can change the meaning of another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from paktum_common.errors import InvalidQueryError
from paktum_common.search.query import NumericField, Order, SearchQuery

# The attributes the translation refers to; the index settings (meili_migrations) make them filterable.
TAGS = "Tags"
TAG_PREFIXES = "TagPrefixes"
RATING = "Rating"
ID = "ID"
ADDED_TS = "AddedTs"
NUMERIC_ATTRIBUTES: dict[NumericField, str] = {"width": "Width", "height": "Height", "size": "Size", "added": ADDED_TS}

# Meilisearch reads only the first ten words of `q` and silently drops the rest: refuse instead.
MAX_QUERY_WORDS = 10


def quote(value: str) -> str:
    """A filter string literal that Meilisearch reads back as exactly `value`, whatever it contains."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(quote(v) for v in values) + "]"


def tag_prefixes(tags: Iterable[str]) -> list[str]:
    """Every leading substring of every tag: what `TagPrefixes = "ca"` matches for `ca*`.

    Meilisearch has no stable prefix operator on filter values (STARTS WITH is experimental), so a
    prefix query becomes an exact match on this derived field. Its cost is one value per character
    of each distinct tag, shared between documents in the facet index.
    """
    seen: dict[str, None] = {}
    for tag in tags:
        for end in range(1, len(tag) + 1):
            seen.setdefault(tag[:end], None)
    return list(seen)


def facet_search_request(prefix: str) -> dict[str, Any]:
    """The body for POST /indexes/{uid}/facet-search asking for the `Tags` values that start with `prefix`.

    The facet index holds whole values, so `facetQuery` is a prefix of the whole tag, not of a word in it.
    Meilisearch compares it with its normalized form of each value (case, accents and compatibility forms
    folded; no typos, since typo tolerance is off), which finds a superset of the tags that start with
    `prefix`: the caller keeps only those. No `q` and no filter: counts are over every document. An empty
    prefix sends no `facetQuery` at all, the documented way to ask for every value.
    """
    body: dict[str, Any] = {"facetName": TAGS}
    if prefix:
        body["facetQuery"] = prefix
    return body


def filter_clauses(query: SearchQuery) -> list[str]:
    """The filter in array form: each element must hold, in the order the query lists its parts."""
    clauses: list[str] = [f"{TAGS} = {quote(tag)}" for tag in query.all_tags]
    if query.none_tags:
        clauses.append(f"NOT {TAGS} IN {quote_list(query.none_tags)}")
    if query.any_tags:
        clauses.append(f"{TAGS} IN {quote_list(query.any_tags)}")
    clauses.extend(f"{TAG_PREFIXES} = {quote(prefix)}" for prefix in _non_empty(query.prefixes, "prefix"))
    none_prefixes = _non_empty(query.none_prefixes, "excluded prefix")
    if none_prefixes:
        clauses.append(f"NOT {TAG_PREFIXES} IN {quote_list(none_prefixes)}")
    if query.ratings:
        clauses.append(f"{RATING} IN {quote_list(r.value for r in query.ratings)}")
    for numeric in query.numeric:
        # The value is an int by type; int() keeps anything else (a bool, a float) out of the grammar.
        clauses.append(f"{NUMERIC_ATTRIBUTES[numeric.field]} {numeric.op} {int(numeric.value)}")
    return clauses


def _non_empty(prefixes: Sequence[str], what: str) -> tuple[str, ...]:
    # Every tag starts with the empty string, which the derived field does not hold.
    if any(not p for p in prefixes):
        raise InvalidQueryError(f"an empty {what} matches every tag; give at least one character")
    return tuple(prefixes)


def full_text(words: Sequence[str]) -> str:
    """`q`: every word as a phrase, so it matches exactly (no typo, no prefix) and in order.

    Meilisearch's `q` has no escape for a double quote; the tokenizer treats one as a separator, as
    SQLite's FTS5 does, so dropping it changes nothing that either backend matches.
    """
    phrases = [" ".join(word.replace('"', " ").split()) for word in words]
    phrases = [p for p in phrases if p]
    count = sum(len(p.split()) for p in phrases)
    if count > MAX_QUERY_WORDS:
        raise InvalidQueryError(f"at most {MAX_QUERY_WORDS} full-text words per search, got {count}")
    return " ".join(f'"{p}"' for p in phrases)


def sort_for(order: Order) -> list[str] | None:
    if order is Order.added_desc:
        return [f"{ADDED_TS}:desc"]
    if order is Order.added_asc:
        return [f"{ADDED_TS}:asc"]
    return None  # random order is drawn by positions (see meili.py), over the index's own order


def base_request(query: SearchQuery, attributes: Sequence[str]) -> dict[str, Any]:
    """The parts of a search request every page of this query shares."""
    body: dict[str, Any] = {}
    q = full_text(query.words)
    if q:
        body["q"] = q
        # The default strategy drops words from the end when too few documents match all of them.
        body["matchingStrategy"] = "all"
    clauses = filter_clauses(query)
    if clauses:
        body["filter"] = clauses
    sort = sort_for(query.order)
    if sort:
        body["sort"] = sort
    body["attributesToRetrieve"] = list(attributes)
    return body


def page_window(limit: int, offset: int) -> tuple[int, int, int]:
    """(page, hitsPerPage, skip): the smallest page that holds hits offset..offset+limit-1.

    Only page/hitsPerPage requests return the exact `totalHits` (offset/limit ones estimate it), so
    an arbitrary window is read as one page and `skip` hits are dropped from its start.
    """
    if limit < 0 or offset < 0:
        raise InvalidQueryError(f"limit and offset must not be negative, got {limit} and {offset}")
    if limit == 0:
        return 1, 0, 0
    size = limit
    while offset // size != (offset + limit - 1) // size:
        size += 1
    page = offset // size
    return page + 1, size, offset - page * size


def search_request(
    query: SearchQuery, limit: int, offset: int, attributes: Sequence[str]
) -> tuple[dict[str, Any], int]:
    """The body for POST /indexes/{uid}/search and how many hits to drop from the start of its page."""
    page, size, skip = page_window(limit, offset)
    return {**base_request(query, attributes), "page": page, "hitsPerPage": size}, skip


def position_runs(positions: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted positions grouped into (offset, limit) runs of consecutive positions."""
    runs: list[tuple[int, int]] = []
    for position in sorted(set(positions)):
        if runs and runs[-1][0] + runs[-1][1] == position:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((position, 1))
    return runs


def position_queries(
    index: str, query: SearchQuery, positions: Iterable[int], attributes: Sequence[str]
) -> list[dict[str, Any]]:
    """The multi-search queries that read the hits at these positions of the query's own order."""
    base = {"indexUid": index, **base_request(query, attributes)}
    return [{**base, "offset": offset, "limit": limit} for offset, limit in position_runs(positions)]
