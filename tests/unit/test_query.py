"""The search language: every term form, and errors that point at the bad term."""

import pytest

from paktum_common.contracts import Rating
from paktum_common.errors import InvalidQueryError
from paktum_common.search import NumericFilter, Order, SearchQuery, parse_query
from paktum_common.search.query import MAX_TERMS

CASES = [
    ("", SearchQuery()),
    ("  ,, ", SearchQuery()),
    ("cat_ears", SearchQuery(all_tags=("cat_ears",))),
    ("cat_ears,solo", SearchQuery(all_tags=("cat_ears", "solo"))),
    ("cat_ears, solo  smile", SearchQuery(all_tags=("cat_ears", "solo", "smile"))),
    ("Cat_Ears cat_ears", SearchQuery(all_tags=("cat_ears",))),
    ("re:zero :3", SearchQuery(all_tags=("re:zero", ":3"))),
    ("a -b", SearchQuery(all_tags=("a",), none_tags=("b",))),
    ("~a ~b,~c", SearchQuery(any_tags=("a", "b", "c"))),
    ("cat* -dog*", SearchQuery(prefixes=("cat",), none_prefixes=("dog",))),
    ("long_hair blue* -red -r*", SearchQuery(("long_hair",), ("red",), prefixes=("blue",), none_prefixes=("r",))),
    ("rating:safe", SearchQuery(ratings=(Rating.safe,))),
    ("rating:E", SearchQuery(ratings=(Rating.explicit,))),
    ("a,rating:s,q", SearchQuery(all_tags=("a",), ratings=(Rating.safe, Rating.questionable))),
    ("rating:s,q,e", SearchQuery(ratings=(Rating.safe, Rating.questionable, Rating.explicit))),
    # A rating letter after a space is a tag: only the comma joins it to the rating term.
    ("rating:s q", SearchQuery(all_tags=("q",), ratings=(Rating.safe,))),
    ("rating:general,rating:g", SearchQuery(ratings=(Rating.general,))),
    ("order:-added", SearchQuery(order=Order.added_desc)),
    ("order:added a", SearchQuery(all_tags=("a",), order=Order.added_asc)),
    ("order:random", SearchQuery(order=Order.random)),
    ("width:>1000", SearchQuery(numeric=(NumericFilter("width", ">", 1000),))),
    ("height:<=500", SearchQuery(numeric=(NumericFilter("height", "<=", 500),))),
    (
        "size:>=1024 size:<2048",
        SearchQuery(numeric=(NumericFilter("size", ">=", 1024), NumericFilter("size", "<", 2048))),
    ),
    ("added:<1700000000", SearchQuery(numeric=(NumericFilter("added", "<", 1700000000),))),
    ("width:800", SearchQuery(numeric=(NumericFilter("width", "=", 800),))),
    ("width:=800", SearchQuery(numeric=(NumericFilter("width", "=", 800),))),
    ('"blue sky"', SearchQuery(words=("blue", "sky"))),
    ('cat "Blue  Sky",-dog', SearchQuery(all_tags=("cat",), none_tags=("dog",), words=("blue", "sky"))),
    ('"a,b"', SearchQuery(words=("a,b",))),
    (
        '~x ~y z* -w -v* rating:q,e width:>=10 "hi" order:-added',
        SearchQuery(
            none_tags=("w",),
            any_tags=("x", "y"),
            prefixes=("z",),
            none_prefixes=("v",),
            ratings=(Rating.questionable, Rating.explicit),
            numeric=(NumericFilter("width", ">=", 10),),
            words=("hi",),
            order=Order.added_desc,
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[repr(text) for text, _ in CASES])
def test_parse_query(text: str, expected: SearchQuery) -> None:
    assert parse_query(text) == expected


def test_default_order_applies_only_without_an_order_term() -> None:
    assert parse_query("a", default_order=Order.added_desc).order is Order.added_desc
    assert parse_query("a order:random", default_order=Order.added_desc).order is Order.random


ERRORS = [
    ("rating:nsfw", "'rating:nsfw' at character 1: unknown rating 'nsfw'"),
    ("cat rating:", "'rating:' at character 5: rating: needs a rating"),
    ("order:best", "'order:best' at character 1: unknown order 'best'"),
    ("order:added order:random", "'order:random' at character 13: the order is given twice"),
    ("a - b", "'-' at character 3: '-' must be followed by a tag"),
    ("a,~", "'~' at character 3: '~' must be followed by a tag"),
    ("--a", "'--a' at character 1: '-' can be used once before a tag"),
    ("-~a", "'-~a' at character 1: '-' can be used once before a tag"),
    ("*", "'*' at character 1: a tag is missing"),
    ("x -*", "'-*' at character 3: a tag is missing"),
    ("ca*t", "'ca*t' at character 1: '*' is only allowed at the end of a tag"),
    ("~cat*", "'~cat*' at character 1: '~' and '*' cannot be combined"),
    ("width:big", "'width:big' at character 1: width: needs a whole number"),
    ("width:>", "width: needs a whole number"),
    ("size:>-5", "'size:>-5' at character 1: size: needs a whole number"),
    ("width:>>5", "width: needs a whole number"),
    ("height:1.5", "height: needs a whole number"),
    ("width:>99999999999999999999", "width: 99999999999999999999 is out of range (at most 9223372036854775807)"),
    (
        "size:9223372036854775808",
        "'size:9223372036854775808' at character 1: size: 9223372036854775808 is out of range",
    ),
    ("added:<=" + "9" * 190, "added: " + "9" * 190 + " is out of range"),
    ("-rating:e", "'-rating:e' at character 1: '-' cannot be used with rating:"),
    ("~width:5", "'~' cannot be used with width:"),
    ('cat "blue sky', "unclosed quote at character 5"),
    ('a ""', '"" at character 3: empty quotes'),
    ('cat"s', "a quote must start a term, found one inside 'cat\"' (at character 4)"),
    ("x" * 201, "a term is at most 200 characters"),
    (" ".join(f"t{i}" for i in range(MAX_TERMS + 1)), f"too many terms: {MAX_TERMS + 1}, at most {MAX_TERMS}"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[repr(text[:30]) for text, _ in ERRORS])
def test_malformed_query_names_the_bad_term(text: str, message: str) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        parse_query(text)
    assert message in str(caught.value)
