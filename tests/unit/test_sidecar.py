from pathlib import Path

import pytest

from paktum_common.contracts import Rating
from paktum_scraper.local import SidecarError, read_sidecar


@pytest.mark.parametrize(
    ("name", "text", "tags", "rating"),
    [
        ("a.txt", "cat_ears solo\nsmile\n", ["cat_ears", "solo", "smile"], None),
        ("a.txt", "cat ears, long hair, solo", ["cat_ears", "long_hair", "solo"], None),
        ("a.json", '{"tags": "a b", "rating": "q"}', ["a", "b"], Rating.questionable),
        ("a.json", '{"tags": ["a", "B"]}', ["a", "b"], None),
        ("a.json", '{"tag_string": "x y", "rating": "general"}', ["x", "y"], Rating.general),
        ("a.json", '{"tags": {"artist": ["someone"], "general": ["hug"]}}', ["someone", "hug"], None),
    ],
    ids=["txt-lines", "txt-commas", "json-string", "json-list", "danbooru-tag-string", "gallery-dl-categories"],
)
def test_sidecars(tmp_path: Path, name: str, text: str, tags: list[str], rating: Rating | None) -> None:
    path = tmp_path / name
    path.write_text(text)
    sidecar = read_sidecar(path)
    assert sidecar.tags == tags
    assert sidecar.rating == rating


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("a.json", b"{not json", "invalid JSON"),
        ("a.json", b"[1, 2]", "expected a JSON object"),
        ("a.json", b'{"tags": 5}', "must be a string or a list"),
        ("a.json", b'{"tags": "a", "rating": "nsfw"}', "unknown rating"),
        ("a.txt", b"\xff\xfe\xfa", "cannot read"),
    ],
    ids=["broken-json", "not-an-object", "bad-tags", "bad-rating", "not-utf8"],
)
def test_unreadable_sidecars_raise_with_the_reason(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SidecarError, match=reason):
        read_sidecar(path)
