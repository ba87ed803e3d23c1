"""Hue marks (paktum_common.hues): what they keep of a picture, which copies agree, and the rule applied the same
way one pair at a time (hues_agree, phash.match) and many at once (hue_agreement, the regroup)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from paktum_cleanup import variants
from paktum_common import hues
from paktum_common.dct_hash import picture_hashes, with_hues
from paktum_common.hues import FLOOR_BYTE, HUE_BINS, HUES_LENGTH, hue_agreement, hues_agree
from paktum_common.phash import NO_MATCH, SIGNATURE_LENGTH, coefficients_of, hues_of, match
from paktum_hasher.phash import hue_pixels
from tests.imagefiles import picture
from tests.unit.test_signature import dct, grey
from tests.unit.test_variants import METHODS


def wedge(fruit: tuple[int, int, int]) -> Image.Image:
    """One drawing in one colour on white: a lime's wedge and a lemon's differ only in it."""
    image = Image.new("RGB", (200, 160), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.pieslice((10, 10, 190, 190), 180, 360, fill=fruit, outline=(40, 40, 40), width=4)
    draw.line((100, 100, 40, 40), fill=(250, 250, 220), width=6)
    return image


LIME, LEMON = (120, 190, 40), (245, 215, 40)


def hue_mark(image: Image.Image) -> bytes:
    """The mark as the hasher takes it."""
    return hues.hue_mark(hue_pixels(image))


def test_a_mark_is_the_mean_chroma_then_each_hues_share() -> None:
    mark = hue_mark(Image.new("RGB", (64, 64), (255, 0, 0)))
    assert len(mark) == HUES_LENGTH == 1 + HUE_BINS
    assert mark[0] == 255 and mark[1] == 255 and sum(mark[2:]) == 0  # all of its chroma, all of it red
    half = Image.new("RGB", (64, 64), (255, 255, 255))
    half.paste((0, 0, 255), (0, 0, 32, 64))
    assert hue_mark(half)[0] == 128 and hue_mark(half)[1 + 8] == 255  # half the picture blue: 240 degrees
    assert hue_mark(Image.new("RGB", (64, 64), (90, 90, 90)))[0] == 0  # grey has no chroma


def test_copies_agree_and_another_colour_does_not() -> None:
    lime = hue_mark(wedge(LIME))
    copies = {
        "mirror": ImageOps.mirror(wedge(LIME)),
        "turn": wedge(LIME).transpose(Image.Transpose.ROTATE_90),
        "brighter": ImageEnhance.Brightness(wedge(LIME)).enhance(1.25),
        "half size": wedge(LIME).resize((100, 80)),
        "crop": wedge(LIME).crop((10, 8, 190, 152)),
    }
    for name, copy in copies.items():
        assert hues_agree(lime, hue_mark(copy)), name
    assert hue_mark(ImageOps.mirror(wedge(LIME))) == lime  # no place in it: a mirror is the same mark
    assert not hues_agree(lime, hue_mark(wedge(LEMON)))
    grey_copy = hue_mark(wedge(LIME).convert("L"))
    assert grey_copy[0] < FLOOR_BYTE and hues_agree(lime, grey_copy) and hues_agree(grey_copy, hue_mark(wedge(LEMON)))
    assert hues_agree(lime, b"") and hues_agree(b"", hue_mark(wedge(LEMON)))  # hashed before marks were kept


def test_a_signature_ends_with_the_hue_mark() -> None:
    coefficients = dct(grey(1))
    mark = hue_mark(wedge(LIME))
    signature = with_hues(picture_hashes(coefficients), mark).signature
    assert coefficients_of(signature) == picture_hashes(coefficients).signature and hues_of(signature) == mark
    assert hues_of(picture_hashes(coefficients).signature) == b""  # an older signature: no mark, same coefficients
    assert coefficients_of(signature[:-1]) == b"" and hues_of(signature[:-1]) == b""  # neither length: nothing
    flat = dct(np.full((32, 32), 90.0))
    assert with_hues(picture_hashes(flat), mark).signature == b""


def test_match_at_a_distance_refuses_every_way_between_pictures_of_other_colours() -> None:
    pixels = dct(grey(2))
    lime = with_hues(picture_hashes(pixels), hue_mark(wedge(LIME)))
    lemon = with_hues(picture_hashes(pixels), hue_mark(wedge(LEMON)))
    marks = (lime.signature, lemon.signature)
    assert match(lime.plain, lime.alternates, lemon.plain, lemon.alternates, distance=10, signatures=marks) == (
        NO_MATCH,
        "none",
    )
    assert match(lime.plain, (), lime.alternates[0], (), distance=10, signatures=marks) == (NO_MATCH, "none")
    assert match(lime.plain, (), lemon.plain, ()) == (0, "none")  # no distance: how near, as before
    again = (lime.signature, lime.signature)
    assert match(lime.plain, lime.alternates, lime.plain, lime.alternates, distance=10, signatures=again) == (0, "none")


def random_marks(seed: int, n: int) -> np.ndarray:
    """Marks of every kind: none (zeros), below the floor, one hue, spread, and near copies of another row."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, HUES_LENGTH), dtype=np.uint8)
    for i in range(n):
        kind = i % 5
        if kind == 0:
            continue
        shares = rng.dirichlet(np.full(HUE_BINS, 0.3 if kind == 2 else 1.0))
        rows[i, 1:] = np.rint(shares * 255)
        rows[i, 0] = rng.integers(0, FLOOR_BYTE) if kind == 1 else rng.integers(FLOOR_BYTE, 256)
        if kind == 4:
            near = rows[i - 1].astype(np.int64) + rng.integers(-20, 21, HUES_LENGTH)
            rows[i] = np.clip(near, 0, 255)
    return rows


def test_many_at_once_is_one_at_a_time() -> None:
    rows = random_marks(3, 300)
    marks = [row.tobytes() if row.any() else b"" for row in rows]
    left, right = np.triu_indices(len(rows), 1)
    together = hue_agreement(rows[left], rows[right])
    alone = np.array([hues_agree(marks[i], marks[j]) for i, j in zip(left, right, strict=True)])
    assert np.array_equal(together, alone)
    assert 0.1 < float(np.mean(~alone)) < 0.9  # the draw has both


@pytest.mark.parametrize("method", [*METHODS, pytest.param("brute", id="brute")])
def test_the_regroup_drops_the_pairs_of_other_colours_and_only_those(method: variants.Method) -> None:
    rng = random.Random(5)
    n = 240
    base = [rng.getrandbits(64) for _ in range(n // 2)]
    hashes = np.array([h for b in base for h in (b, b ^ (1 << rng.randrange(64)))], dtype=np.uint64)
    rows = random_marks(6, n)
    plain = {tuple(p) for p in variants.variant_pairs(hashes, 10, method).tolist()}
    found = {tuple(p) for p in variants.variant_pairs(hashes, 10, method, hues=rows).tolist()}
    marks = [row.tobytes() if row.any() else b"" for row in rows]
    assert found == {(i, j) for i, j in plain if hues_agree(marks[i], marks[j])}
    assert found < plain


def test_a_mark_of_any_picture_size_and_mode() -> None:
    for image in (
        picture(1).resize((7, 3)),
        picture(2).convert("P"),
        picture(3).convert("CMYK"),
        picture(4).convert("LA"),
    ):
        assert len(hue_mark(image)) == HUES_LENGTH
    with pytest.raises(ValueError, match="32x32 RGB"):
        hues.hue_mark(np.zeros((32, 32), dtype=np.uint8))
    assert (
        len(with_hues(picture_hashes(dct(grey(1))), hue_mark(picture(1))).signature) == SIGNATURE_LENGTH + HUES_LENGTH
    )
