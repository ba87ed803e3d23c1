"""Search: one interface, a backend-neutral query, and the backends behind it."""

from paktum_common.search.base import SearchBackend, SearchPage, open_search
from paktum_common.search.query import NumericFilter, Order, SearchQuery, parse_query

__all__ = ["NumericFilter", "Order", "SearchBackend", "SearchPage", "SearchQuery", "open_search", "parse_query"]
