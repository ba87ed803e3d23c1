"""Search: one interface, a backend-neutral query, and the backends behind it."""

from paktum_common.search.base import SearchBackend, SearchPage, open_search
from paktum_common.search.query import Order, SearchQuery, parse_query

__all__ = ["Order", "SearchBackend", "SearchPage", "SearchQuery", "open_search", "parse_query"]
