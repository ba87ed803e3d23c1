"""Search: one interface, a backend-neutral query, and the backends behind it."""

from paktum_common.search.base import TAG_LIMIT_MAX, SearchBackend, SearchPage, TagCount, open_search
from paktum_common.search.query import NumericFilter, Order, SearchQuery, parse_query

__all__ = [
    "TAG_LIMIT_MAX",
    "NumericFilter",
    "Order",
    "SearchBackend",
    "SearchPage",
    "SearchQuery",
    "TagCount",
    "open_search",
    "parse_query",
]
