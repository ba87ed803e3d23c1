import pytest

from paktum_common.errors import InvalidQueryError
from paktum_common.models import Rating
from paktum_common.search import Order, SearchQuery, parse_query


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SearchQuery()),
        ("cat_ears", SearchQuery(all_tags=("cat_ears",))),
        ("cat_ears,solo", SearchQuery(all_tags=("cat_ears", "solo"))),
        ("cat_ears, solo  smile", SearchQuery(all_tags=("cat_ears", "solo", "smile"))),
        ("Cat_Ears cat_ears", SearchQuery(all_tags=("cat_ears",))),
        ("a -b", SearchQuery(all_tags=("a",), none_tags=("b",))),
        ("rating:safe", SearchQuery(ratings=(Rating.safe,))),
        ("a,rating:s,q", SearchQuery(all_tags=("a",), ratings=(Rating.safe, Rating.questionable))),
        ("order:-added", SearchQuery(order=Order.added_desc)),
        ("order:added a", SearchQuery(all_tags=("a",), order=Order.added_asc)),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else "",
)
def test_parse_query(text: str, expected: SearchQuery) -> None:
    assert parse_query(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("rating:nsfw", "unknown rating 'nsfw'"), ("order:best", "unknown order 'best'"), ("a - b", "'-' must be")],
)
def test_malformed_query_names_the_bad_term(text: str, message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        parse_query(text)
