"""The in-memory tag bitmaps against a brute-force reference: random images, random change batches, every
query form. The index must answer exactly what a scan of the images would, at every step."""

from __future__ import annotations

import random

import numpy as np
import pytest

from paktum_common.contracts import Rating
from paktum_common.search import NumericFilter, Order, SearchQuery, bitmaps
from paktum_common.search.bitmaps import Columns, Row, TagBitmaps, rating_code, words_of

VOCABULARY = ["blue_sky", "sky", "cat_ears", "cat", "café_au_lait", "Cafe", "tag_1", "tag_10", "tag_2", "日本_語"]
RATINGS = [r.value for r in Rating]


def random_image(rng: random.Random, ordinal: int) -> Row:
    return Row(
        ordinal,
        tuple(rng.sample(VOCABULARY, rng.randint(0, 4))),
        rng.choice(RATINGS),
        rng.choice([1_700_000_000, 1_700_000_060, rng.randint(0, 2**33)]),  # ties, and seconds past 2106
        rng.randint(100, 4000),
        rng.randint(100, 4000),
        rng.randint(1, 10**7),
    )


def matches(image: Row, query: SearchQuery) -> bool:
    tags = set(image.tags)
    words = {word for tag in image.tags for word in words_of(tag)}
    ops = {"<": int.__lt__, "<=": int.__le__, ">": int.__gt__, ">=": int.__ge__, "=": int.__eq__}
    return (
        all(tag in tags for tag in query.all_tags)
        and not any(tag in tags for tag in query.none_tags)
        and (not query.any_tags or any(tag in tags for tag in query.any_tags))
        and all(any(tag.startswith(p) for tag in tags) for p in query.prefixes)
        and not any(tag.startswith(p) for tag in tags for p in query.none_prefixes)
        and (not query.ratings or image.rating in {r.value for r in query.ratings})
        and all(ops[n.op](getattr(image, n.field), n.value) for n in query.numeric)
        and all(all(token in words for token in words_of(word)) for word in query.words)
    )


def clipped(added: int) -> int:
    return min(max(added, 0), 2**32 - 1)


def random_query(rng: random.Random) -> SearchQuery:
    def some(pool: list[str], most: int) -> tuple[str, ...]:
        return tuple(rng.sample(pool, rng.randint(0, most)))

    prefixes = ["tag_1", "tag_", "ca", "caf", "blue", "z"]
    numeric = tuple(
        NumericFilter(rng.choice(["width", "height", "size", "added"]), rng.choice(["<", "<=", ">", ">=", "="]), v)
        for v in rng.sample([1000, 2000, 1_700_000_000, 5_000_000], rng.randint(0, 2))
    )
    return SearchQuery(
        all_tags=some([*VOCABULARY, "absent"], 2),
        none_tags=some(VOCABULARY, 2),
        any_tags=some([*VOCABULARY, "absent"], 3),
        prefixes=some(prefixes, 1),
        none_prefixes=some(prefixes, 1),
        ratings=tuple(rng.sample(list(Rating), rng.randint(0, 2))),
        numeric=numeric,
        words=some(["sky", "cat", "cafe", "CAFÉ", "ears", "au-lait", "語", "1", "blue_sky"], 2),
        order=rng.choice(list(Order)),
    )


def check(index: TagBitmaps, images: dict[int, Row], rng: random.Random) -> None:
    assert sorted(index.alive) == sorted(images)
    for _ in range(40):
        query = random_query(rng)
        want = sorted(o for o, image in images.items() if matches(image, query))
        hits = index.hits(query)
        assert sorted(hits) == want, query
        for order in (Order.added_desc, Order.added_asc):
            ranked = sorted(want, key=lambda o: (clipped(images[o].added), o), reverse=order is Order.added_desc)
            limit, offset = rng.choice([(1, 0), (5, 0), (3, 2), (50, 0), (10, len(want))])
            assert index.page(hits, order, limit, offset) == ranked[offset : offset + limit], (query, order)
    for prefix in ("", "tag_", "ca", "c", "日", "x"):
        counts: dict[str, int] = {}
        for image in images.values():
            for tag in image.tags:
                if tag.startswith(prefix):
                    counts[tag] = counts.get(tag, 0) + 1
        want_tags = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:4]
        assert index.tags(prefix, 4) == want_tags, prefix


def columns_of(images: dict[int, Row]) -> Columns:
    ordered = list(images.values())
    ids = {tag: n for n, tag in enumerate(VOCABULARY, 1)}

    def column(name: str) -> np.ndarray:
        return np.asarray([getattr(image, name) for image in ordered], dtype=np.int64)

    return Columns(
        ordinals=column("ordinal"),
        ratings=np.asarray([rating_code(image.rating) for image in ordered], dtype=np.int64),
        added=column("added"),
        width=column("width"),
        height=column("height"),
        size=column("size"),
        tag_ids=np.asarray([ids[tag] for image in ordered for tag in image.tags], dtype=np.uint32),
        tag_counts=np.asarray([len(image.tags) for image in ordered], dtype=np.int64),
        names={n: tag for tag, n in ids.items()},
    )


@pytest.mark.parametrize("seed", range(6))
def test_the_index_answers_as_a_scan_would_through_random_changes(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # A small window, so that reading the global order for a page takes several windows here too.
    monkeypatch.setattr(bitmaps, "WALK_WINDOW", 2 + seed)
    rng = random.Random(seed)
    images = {o: random_image(rng, o) for o in rng.sample(range(1, 3000), 300)}
    index = TagBitmaps()
    index.load(columns_of(images))
    check(index, images, rng)
    for _ in range(8):
        # A batch: new images, changed ones (several times over), deleted ones, and ordinals reused.
        removed: dict[int, set[str]] = {}
        for _ in range(rng.randint(1, 60)):
            ordinal = rng.randint(1, 3200)
            old = images.pop(ordinal, None)
            removed.setdefault(ordinal, set()).update(old.tags if old else ())
            if rng.random() < 0.7:
                images[ordinal] = random_image(rng, ordinal)
        index.apply(removed, [images[o] for o in removed if o in images])
        check(index, images, rng)


def test_words_are_made_as_sqlite_unicode61_makes_them() -> None:
    assert words_of("blue_sky") == ["blue", "sky"]
    assert words_of("Café-au_lait") == ["cafe", "au", "lait"]
    assert words_of("tag_1(2)") == ["tag", "1", "2"]
    assert words_of("日本語") == ["日本語"]
    assert words_of("___") == []


def test_an_empty_index_answers_nothing() -> None:
    index = TagBitmaps()
    index.load(columns_of({}))
    assert len(index.hits(SearchQuery())) == 0
    assert index.page(index.hits(SearchQuery()), Order.added_desc, 10, 0) == []
    assert index.tags("", 10) == []
