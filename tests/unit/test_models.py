import json

import pytest

from paktum_common.contracts import PHASH_MAX, ImageDocument, Post, Rating, normalize_tags
from paktum_common.errors import BadPostError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("g", Rating.general),
        ("General", Rating.general),
        ("s", Rating.safe),
        ("sensitive", Rating.safe),
        (" q ", Rating.questionable),
        ("e", Rating.explicit),
        ("EXPLICIT", Rating.explicit),
    ],
    ids=lambda v: repr(v),
)
def test_rating_parses_site_letters_and_words(raw: str, expected: Rating) -> None:
    assert Rating.parse(raw) is expected


@pytest.mark.parametrize("raw", ["", "x", "nsfw", "safe!"])
def test_unknown_rating_is_a_bad_post(raw: str) -> None:
    with pytest.raises(BadPostError, match="unknown rating"):
        Rating.parse(raw)


def test_tags_are_normalized_deduplicated_and_ordered() -> None:
    assert normalize_tags(["Cat_Ears", "solo", "cat_ears", " long hair ", ""]) == ["cat_ears", "solo", "long_hair"]
    assert normalize_tags("b a b") == ["b", "a"]


def test_post_round_trips_through_the_stream_form() -> None:
    post = Post(source="gelbooru", source_id="42", md5="A" * 32, file_url="https://x/y.jpg", tags="a b", rating="s")
    again = Post.from_stream(post.to_stream())
    assert again == post
    assert again.md5 == "a" * 32 and again.rating is Rating.safe


@pytest.mark.parametrize(
    "fields", [{}, {"post": "not json"}, {"post": '{"source": "x"}'}], ids=["empty", "junk", "no-url"]
)
def test_malformed_stream_entry_is_a_bad_post(fields: dict[str, str]) -> None:
    with pytest.raises(BadPostError):
        Post.from_stream(fields)


def test_post_rejects_a_malformed_md5() -> None:
    with pytest.raises(ValueError, match="md5"):
        Post(source="x", md5="abc", file_url="https://x/y.jpg")


def _doc(phash: int) -> ImageDocument:
    return ImageDocument(
        ID="0" * 32, Tags=["a"], Tagstring="a",
        Rating=Rating.safe, Added="1700000000", PHash=phash, Size=1, Width=2, Height=3, Filename="a.jpg",
    )  # fmt: skip


@pytest.mark.parametrize("phash", [0, 1, 0x8000000000000000, PHASH_MAX], ids=["zero", "one", "top-bit", "max"])
def test_phash_is_hex_in_the_index_and_an_exact_integer_in_rest(phash: int) -> None:
    doc = _doc(phash)
    indexed = doc.to_index()
    assert indexed["PHash"] == f"{phash:016x}"
    assert ImageDocument.from_index(json.loads(json.dumps(indexed))).PHash == phash
    # A JSON double would round 2**64-1 to 2**64: the REST form must carry the exact integer.
    assert json.loads(json.dumps(doc.to_rest("/i", "/t")))["PHash"] == phash


def test_rest_form_has_exactly_the_original_fields_plus_thumbnail_and_source() -> None:
    rest = _doc(5).to_rest("https://p.example/images/a.jpg", "https://p.example/thumbnails/a.jpg")
    assert list(rest) == [
        "ID", "URL", "ThumbnailURL", "Tags", "Tagstring", "Rating", "Added", "PHash", "Size", "Width",
        "Height", "Filename", "Source", "SourceID", "SourceURL",
    ]  # fmt: skip
    assert rest["URL"] == "https://p.example/images/a.jpg"


def test_links_are_not_stored_in_the_index_and_old_documents_with_them_still_read() -> None:
    indexed = _doc(5).to_index()
    assert "URL" not in indexed and "ThumbnailURL" not in indexed
    old = {**indexed, "URL": "/images/a.jpg", "ThumbnailURL": "/thumbnails/a.jpg"}
    assert ImageDocument.from_index(old) == _doc(5)


@pytest.mark.parametrize("alternates", [(), (0, PHASH_MAX, 0x0123456789ABCDEF)], ids=["none", "three"])
def test_the_index_json_is_the_index_form(alternates: tuple[int, ...]) -> None:
    doc = _doc(0x8000000000000001).model_copy(
        update={"PHashAlternates": alternates, "Tags": ['say_"cheese"', "日本語", "back\\slash"], "Source": "</script>"}
    )
    assert json.loads(doc.to_index_json()) == doc.to_index()
    assert ImageDocument.from_index(json.loads(doc.to_index_json())) == doc
