"""What decode_image hands on for matching: alternates for every picture, a second background for transparent ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFilter

from paktum_common.phash import ALL_SLOTS, PRIMARY_SLOTS, hamming, match
from paktum_hasher.decode import decode_image
from tests.imagefiles import encode, flattened, picture

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
LINEART = sorted((REAL / "lineart").glob("*.png"))
PHOTO = REAL / "jpeg" / "plasma-ColdRipple-screenshot.jpg"


def decode(data: bytes) -> tuple[int, tuple[int, ...]]:
    decoded = decode_image(data, 50_000_000, 300, "exact")
    return decoded.phash, decoded.alternates


def flattened_jpeg(path: Path, colour: tuple[int, int, int], mirror: bool = False) -> bytes:
    rgba = Image.open(path).convert("RGBA")
    if mirror:
        rgba = rgba.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return encode(flattened(rgba, colour), "JPEG", quality=90)


def test_an_opaque_picture_has_the_seven_turned_hashes() -> None:
    plain, alternates = decode(PHOTO.read_bytes())
    assert len(alternates) == PRIMARY_SLOTS and len(set(alternates)) == PRIMARY_SLOTS and plain not in alternates


def cut_out(seed: int) -> bytes:
    """A picture on a transparent background: a soft-edged ellipse of it, the rest fully transparent."""
    image = picture(seed).convert("RGBA")
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse((80, 40, 520, 420), fill=255)
    image.putalpha(mask.filter(ImageFilter.GaussianBlur(6)))
    return encode(image, "PNG")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_transparent_picture_matches_a_jpeg_flattened_on_white_or_on_black(seed: int, tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes(cut_out(seed))
    plain, alternates = decode(path.read_bytes())
    assert len(alternates) == ALL_SLOTS
    white, black = decode(flattened_jpeg(path, (255, 255, 255))), decode(flattened_jpeg(path, (0, 0, 0)))
    assert hamming(white[0], black[0]) > 10  # two different pictures to pHash: the test proves something
    for copy_plain, copy_alternates in (white, black):
        assert match(plain, alternates, copy_plain, copy_alternates)[0] <= 10
        # From the transparent picture's side alone (the copy indexed before alternates were stored).
        assert match(plain, alternates, copy_plain, ())[0] <= 10
    # Mirrored and flattened on black: both at once.
    turned = decode(flattened_jpeg(path, (0, 0, 0), mirror=True))
    assert match(plain, alternates, turned[0], ())[0] <= 10


@pytest.mark.parametrize("path", LINEART, ids=[p.stem for p in LINEART])
def test_transparent_line_art_still_matches_its_flattening_on_white(path: Path) -> None:
    plain, alternates = decode(path.read_bytes())
    assert len(alternates) == ALL_SLOTS
    white = decode(flattened_jpeg(path, (255, 255, 255)))
    assert match(plain, alternates, *white)[0] <= 10
