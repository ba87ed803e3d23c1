"""The pHash helpers: integer form, distance, and which hashes are too poor to link variants."""

from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw

from paktum_common.phash import DEGENERATE_MIN_BITS, hamming, is_degenerate
from paktum_hasher.phash import bits_to_int, phash_int
from tests.imagefiles import picture

REAL_JPEGS = sorted((Path(__file__).parent.parent / "fixtures" / "real" / "jpeg").glob("*.jpg"))


def test_bits_are_read_row_by_row_first_bit_most_significant() -> None:
    bits = np.zeros((8, 8), dtype=bool)
    bits[0, 0] = True  # first bit
    bits[7, 7] = True  # last bit
    bits[1, 0] = True  # ninth bit
    assert bits_to_int(bits) == (1 << 63) | (1 << 55) | 1


def test_phash_int_is_imagehash_as_an_unsigned_64_bit_integer() -> None:
    image = picture(5)
    expected = int(str(imagehash.phash(image)), 16)  # imagehash's own hex form
    assert phash_int(image) == expected
    assert 0 <= phash_int(image) < 1 << 64


@pytest.mark.parametrize(("a", "b", "bits"), [(0, 0, 0), (0, (1 << 64) - 1, 64), (0b1011, 0b0110, 3), (1 << 63, 1, 2)])
def test_hamming_counts_differing_bits(a: int, b: int, bits: int) -> None:
    assert hamming(a, b) == hamming(b, a) == bits


def flat(value: int) -> Image.Image:
    return Image.new("L", (320, 240), value)


def vertical_gradient() -> Image.Image:
    return Image.linear_gradient("L").resize((320, 240))


def symmetric_star(points: int) -> Image.Image:
    """A star on white, its right half the mirror of its left: exactly symmetric, like the
    openclipart star series whose sparse hashes formed one big variant group."""
    image = Image.new("L", (400, 400), 255)
    angles = np.linspace(0, 2 * np.pi, 2 * points, endpoint=False)
    radii = np.where(np.arange(2 * points) % 2 == 0, 180, 80)
    outline = [(200 + r * np.sin(a), 200 - r * np.cos(a)) for r, a in zip(radii, angles, strict=True)]
    ImageDraw.Draw(image).polygon(outline, fill=0)
    pixels = np.asarray(image).copy()
    pixels[:, 200:] = pixels[:, :200][:, ::-1]
    return Image.fromarray(pixels)


@pytest.mark.parametrize(
    ("label", "image"),
    [
        ("black", flat(0)),
        ("grey", flat(128)),
        ("white", flat(255)),
        ("gradient", vertical_gradient()),
        ("star-5", symmetric_star(5)),
        ("star-6", symmetric_star(6)),
        ("star-12", symmetric_star(12)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_flat_and_symmetric_pictures_are_degenerate(label: str, image: Image.Image) -> None:
    phash = phash_int(image)
    assert phash.bit_count() < DEGENERATE_MIN_BITS, f"{phash:016x}"
    assert is_degenerate(phash)


@pytest.mark.parametrize("path", REAL_JPEGS, ids=lambda p: p.name)
def test_real_photographs_are_not_degenerate(path: Path) -> None:
    phash = phash_int(Image.open(path))
    assert phash.bit_count() == 32  # no ties at the median in a real picture
    assert not is_degenerate(phash)


@pytest.mark.parametrize("seed", range(5))
def test_drawn_pictures_are_not_degenerate(seed: int) -> None:
    assert not is_degenerate(phash_int(picture(seed)))


@pytest.mark.parametrize(
    ("ones", "degenerate"),
    [
        (0, True),
        (1, True),
        (DEGENERATE_MIN_BITS - 1, True),
        (DEGENERATE_MIN_BITS, False),
        (32, False),
        (64 - DEGENERATE_MIN_BITS, False),
        (64 - DEGENERATE_MIN_BITS + 1, True),
        (64, True),
    ],
)
def test_the_rule_is_a_count_of_set_bits(ones: int, degenerate: bool) -> None:
    spread = sum(1 << (i * 64 // max(ones, 1)) for i in range(ones)) if ones < 64 else (1 << 64) - 1
    assert spread.bit_count() == ones
    assert is_degenerate(spread) is degenerate
