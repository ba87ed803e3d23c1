"""The symmetric hash: what a star, a ring or a flag is matched by once its plain pHash is mostly noise (real
openclipart stars from tests/fixtures/real/symmetric, real photographs from tests/fixtures/real/jpeg), and the
radial pictures it leaves out (many-pointed stars from tests/fixtures/real/radial)."""

from __future__ import annotations

import importlib
import io
import itertools
import sys
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw

from paktum_api.similar import query_hashes
from paktum_common import dct_hash
from paktum_common.dct_hash import (
    ANGULAR_SIDE,
    BAND_PATTERNS,
    MAX_ORDER,
    ORDER_PATTERN_DISTANCE,
    ORDER_PATTERNS,
    RADIAL_CORRELATION,
    SYMMETRIC_SHARE,
    RadialReading,
    angular_reading,
    band_hash,
    dct_32,
    odd_share,
    radial_hash,
    symmetric_hash,
    turn_correlation,
)
from paktum_common.phash import NO_MATCH, SYMMETRIC_DISTANCE, hamming, is_degenerate, is_degenerate_symmetric, match
from paktum_hasher import phash as hasher_phash
from paktum_hasher.decode import DecodedImage, decode_image
from paktum_hasher.phash import bits_to_int, hashes_of
from tests.imagefiles import encode, flattened

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
# A site's mark in the lower right corner, as bench/variants.py makes it: outside the inscribed circle.
watermarked = importlib.import_module("variants").watermark
STARS = sorted((REAL / "symmetric").glob("*.png"))
RADIAL = sorted((REAL / "radial").glob("*.png"))
PHOTOS = sorted((REAL / "jpeg").glob("*.jpg"))
TURN = Image.Transpose


def decode(data: bytes) -> DecodedImage:
    return decode_image(data, 50_000_000, 300, "exact")


def on_white(path: Path) -> Image.Image:
    return flattened(Image.open(path).convert("RGBA"), (255, 255, 255))


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    return encode(image.convert("RGB"), "JPEG", quality=quality)


def symmetric_distance(a: DecodedImage, b: DecodedImage) -> int:
    """As the proposed rule measures it: any of one side's symmetric hashes against the first of the other's."""
    return min(
        min(hamming(h, b.symmetric_hashes[0]) for h in a.symmetric_hashes),
        min(hamming(h, a.symmetric_hashes[0]) for h in b.symmetric_hashes),
    )


def test_stars_are_symmetric_and_photographs_are_not() -> None:
    assert STARS and PHOTOS
    for path in STARS:
        assert decode(path.read_bytes()).symmetric, path.name
    for path in PHOTOS:
        decoded = decode(path.read_bytes())
        assert not decoded.symmetric, path.name
        assert len(decoded.symmetric_hashes) == 1 and not is_degenerate_symmetric(decoded.symmetric_hashes[0])


VARIANTS = {
    "reencode": lambda image: jpeg(image, 70),
    "half size": lambda image: jpeg(image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)),
    "grey": lambda image: jpeg(image.convert("L")),
    "mirror": lambda image: jpeg(image.transpose(TURN.FLIP_LEFT_RIGHT)),
    "rot90": lambda image: jpeg(image.transpose(TURN.ROTATE_90)),
}


@pytest.mark.parametrize("path", STARS, ids=[p.stem for p in STARS])
def test_a_star_copied_keeps_its_symmetric_hash_while_its_plain_phash_moves(path: Path) -> None:
    original = decode(path.read_bytes())
    assert len(original.symmetric_hashes) == 2  # transparent: on white, then on black
    reencoded = decode(jpeg(on_white(path), 70))
    # The plain pHash of a symmetric picture is mostly noise: a JPEG at quality 70 moves it out of reach.
    assert hamming(original.phash, reencoded.phash) > 10
    for name, make in VARIANTS.items():
        copy = decode(make(on_white(path)))
        assert copy.symmetric, name
        assert symmetric_distance(original, copy) <= SYMMETRIC_DISTANCE, name


def test_distinct_stars_are_apart() -> None:
    decoded = [decode(path.read_bytes()) for path in STARS]
    for a, b in itertools.combinations(decoded, 2):
        assert symmetric_distance(a, b) > 3 * SYMMETRIC_DISTANCE


@pytest.mark.parametrize("path", PHOTOS[:3], ids=[p.stem for p in PHOTOS[:3]])
def test_the_symmetric_hash_is_the_same_under_every_turn_and_mirror_at_32x32(path: Path) -> None:
    grey = Image.open(path).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    expected = hashes_of(grey).symmetric_hashes[0]
    for turn in TURN:
        assert hashes_of(grey.transpose(turn)).symmetric_hashes == (expected,), turn.name


def test_a_flat_picture_is_neither_symmetric_nor_hashed_by_its_symmetry() -> None:
    flat = Image.new("L", (32, 32), 128)
    dct = dct_32(np.asarray(flat))
    assert odd_share(dct) == 1.0
    assert is_degenerate_symmetric(symmetric_hash(dct))
    assert not hashes_of(flat).symmetric
    with pytest.raises(ValueError, match="32x32"):
        symmetric_hash(dct[:8, :8])


@pytest.mark.parametrize("path", [*STARS, *RADIAL, *PHOTOS[:3]], ids=[p.stem for p in [*STARS, *RADIAL, *PHOTOS[:3]]])
def test_search_by_image_hashes_a_picture_as_the_hasher_does(path: Path) -> None:
    # As PNG: the api decodes a large JPEG at reduced scale, which may move a bit of any hash.
    data = path.read_bytes() if path.suffix == ".png" else encode(Image.open(path), "PNG")
    ours, api = decode(data), query_hashes(data, 50_000_000, 300, "exact")
    # A degenerate pHash's bits, and a radial picture's, are ties broken by rounding, and never compared.
    if not (is_degenerate(ours.phash) or path in RADIAL):
        assert (api.plain, api.alternates) == (ours.phash, ours.alternates)
    assert api.symmetric == ours.symmetric
    assert api.symmetric_hashes == ours.symmetric_hashes


@pytest.mark.parametrize("thumbnail_size", [480, 300, 120])
def test_search_by_image_decodes_a_jpeg_at_the_hashers_scale(thumbnail_size: int) -> None:
    # In the fast mode the hasher has libjpeg decode at the thumbnail's scale, which moves bits of the pHash: a
    # query decoded at any other scale missed the very file it was given (12 bits from its own stored hash).
    for path in [*PHOTOS, *RADIAL[:2]]:
        data = path.read_bytes() if path.suffix == ".jpg" else jpeg(on_white(path))
        ours = decode_image(data, 50_000_000, thumbnail_size, "fast")
        api = query_hashes(data, 50_000_000, thumbnail_size, "fast")
        assert (api.plain, api.alternates) == (ours.phash, ours.alternates), path.name
        assert api.symmetric_hashes == ours.symmetric_hashes, path.name


def test_search_by_image_hashes_flat_pictures_and_overlays_as_the_hasher_does() -> None:
    # A flat picture's pHash is degenerate for scipy's DCT (its AC coefficients are exactly 0); the api's matrix
    # products must not turn their rounding into bits. An overlay whose colours sit under a faint alpha is flat on
    # white, so the hasher hashes it as stored (or on black): search by image must choose the same background.
    overlay = Image.new("RGBA", (200, 120), (0, 0, 0, 0))
    ImageDraw.Draw(overlay).rectangle((20, 20, 120, 100), fill=(200, 30, 30, 1))
    under_black = Image.new("RGBA", (200, 120), (255, 255, 255, 0))  # as stored: white; on white: white
    ImageDraw.Draw(under_black).ellipse((30, 10, 150, 110), fill=(250, 250, 250, 255))
    pictures = {
        "flat white": Image.new("RGB", (256, 256), (255, 255, 255)),
        "flat grey": Image.new("L", (300, 200), 128),
        "overlay": overlay,
        "pale on transparent": under_black,
    }
    for name, image in pictures.items():
        data = encode(image, "PNG")
        ours, api = decode(data), query_hashes(data, 50_000_000, 300, "exact")
        assert (api.plain, api.alternates) == (ours.phash, ours.alternates), name
        assert api.symmetric_hashes == ours.symmetric_hashes, name
    assert is_degenerate(query_hashes(encode(pictures["flat white"], "PNG"), 50_000_000, 300, "exact").plain)


def test_the_plain_phash_of_a_star_is_still_imagehash_of_it_on_white() -> None:
    for path in STARS:
        flat = on_white(path)
        assert decode(path.read_bytes()).phash == bits_to_int(imagehash.phash(flat).hash)
        assert decode(encode(flat, "PNG")).phash == bits_to_int(imagehash.phash(flat).hash)


def test_many_pointed_stars_are_radial_and_the_rest_are_not() -> None:
    assert RADIAL
    for path in RADIAL:
        assert turn_correlation(hasher_phash.phash_dct(on_white(path))) >= RADIAL_CORRELATION, path.name
    for path in [*STARS, *PHOTOS]:
        picture = on_white(path) if path.suffix == ".png" else Image.open(path)
        assert turn_correlation(hasher_phash.phash_dct(picture)) < RADIAL_CORRELATION, path.name
    flat = Image.new("L", (32, 32), 200)
    assert turn_correlation(dct_32(np.asarray(flat))) == 0.0


@pytest.mark.parametrize("path", [*RADIAL, *PHOTOS[:2]], ids=[p.stem for p in [*RADIAL, *PHOTOS[:2]]])
def test_the_turn_correlation_is_about_the_same_for_the_picture_mirrored_or_turned(path: Path) -> None:
    grey = (on_white(path) if path.suffix == ".png" else Image.open(path)).convert("L")
    grey = grey.resize((32, 32), Image.Resampling.LANCZOS)
    expected = turn_correlation(dct_32(np.asarray(grey)))
    for turn in TURN:
        assert turn_correlation(dct_32(np.asarray(grey.transpose(turn)))) == pytest.approx(expected, abs=0.03)


def test_distinct_radial_stars_and_their_copies_never_link() -> None:
    # Distinct many-pointed stars are as alike at 32x32 as a star and its copy: only their number of points, read
    # beyond the 32x32, tells them apart, and a star whose number is not read links to nothing.
    decoded = []
    for path in RADIAL:
        original = decode(path.read_bytes())
        assert original.symmetric, path.name
        decoded += [(path, original), *((path, decode(make(on_white(path)))) for make in VARIANTS.values())]
    for (path_a, a), (path_b, b) in itertools.combinations(decoded, 2):
        if path_a != path_b:
            assert match(a.phash, a.alternates, b.phash, b.alternates, a.symmetry, b.symmetry)[0] == NO_MATCH


# 41pt07 and 80pt21: their points hold under a quarter of the energy along the rings (the first rule), yet stand out.
@pytest.mark.parametrize("name", ["star_17pt03step.png", "star_45pt17step.png", "star_41pt07step.png",
                                  "star_80pt21step.png"])  # fmt: skip
def test_a_radial_star_whose_points_are_read_links_to_its_full_size_copies(name: str) -> None:
    path = REAL / "radial" / name
    points = int(name[5:7])
    assert angular_reading(hasher_phash.angular_pixels(on_white(path))).order == points
    original = decode(path.read_bytes())
    assert original.symmetric_hashes[0] == radial_hash(points, hasher_phash.phash_dct(on_white(path)))
    for kind in ("reencode", "grey", "mirror", "rot90"):
        copy = decode(VARIANTS[kind](on_white(path)))
        distance = match(original.phash, original.alternates, copy.phash, copy.alternates, original.symmetry,
                         copy.symmetry)[0]  # fmt: skip
        assert distance <= SYMMETRIC_DISTANCE, kind


@pytest.mark.parametrize("name", ["star_17pt03step.png", "star_41pt07step.png", "star_60pt13step.png",
                                  "star_80pt21step.png"])  # fmt: skip
def test_a_radial_stars_crops_link_to_it_by_the_band_of_its_points(name: str) -> None:
    # A crop enlarges the star: its 32x32 profile moves, the ratio of its points' inner to outer radius does not.
    path = REAL / "radial" / name
    original = decode(path.read_bytes())
    for percent in (3, 10):
        picture = on_white(path)
        dx, dy = round(picture.width * percent / 200), round(picture.height * percent / 200)
        copy = decode(jpeg(picture.crop((dx, dy, picture.width - dx, picture.height - dy))))
        distance = match(original.phash, original.alternates, copy.phash, copy.alternates, original.symmetry,
                         copy.symmetry)[0]  # fmt: skip
        assert distance <= SYMMETRIC_DISTANCE, percent
    by_profile = hamming(original.symmetric_hashes[0], copy.symmetric_hashes[0])
    assert by_profile > SYMMETRIC_DISTANCE  # the 10% crop: the radial hash alone would not link it


def test_the_band_of_a_stars_points_is_the_same_at_any_size() -> None:
    readings = []
    for outer, inner in ((120, 80), (90, 60)):
        star = Image.new("L", (ANGULAR_SIDE, ANGULAR_SIDE), 255)
        centre = (ANGULAR_SIDE - 1) / 2
        corners = [
            (centre + (outer if i % 2 == 0 else inner) * np.cos(np.pi * i / 24),
             centre + (outer if i % 2 == 0 else inner) * np.sin(np.pi * i / 24))
            for i in range(48)
        ]  # fmt: skip
        ImageDraw.Draw(star).polygon(corners, fill=0)
        readings.append(angular_reading(np.asarray(star)))
    assert [r.order for r in readings] == [24, 24]
    assert readings[0].band == pytest.approx(readings[1].band, abs=0.01)
    assert 0.6 < readings[0].band < 0.8  # inner over outer radius of the points' band
    dct = hasher_phash.phash_dct(on_white(REAL / "radial" / "star_17pt03step.png"))
    assert band_hash(readings[0], dct) == band_hash(readings[1], dct)


def test_a_band_hash_is_usable_at_every_band_and_none_without_points() -> None:
    dct = hasher_phash.phash_dct(on_white(REAL / "radial" / "star_17pt03step.png"))
    hashes = [band_hash(RadialReading(17, band), dct) for band in (0.0, 0.3, 0.5, 0.75, 1.0)]
    assert all(not is_degenerate_symmetric(h) for h in hashes)
    assert [hamming(hashes[0], h) for h in hashes] == sorted(hamming(hashes[0], h) for h in hashes)  # further apart
    assert band_hash(RadialReading(0, 0.0), dct) == band_hash(RadialReading(MAX_ORDER + 1, 0.5), dct) == 0


def test_a_radial_star_whose_points_are_not_read_has_no_usable_symmetric_hash() -> None:
    for name in ("star_44pt03step.png", "star_50pt03step.png"):
        decoded = decode((REAL / "radial" / name).read_bytes())
        assert decoded.symmetric and all(is_degenerate_symmetric(h) for h in decoded.symmetric_hashes), name


def test_the_pixel_grids_own_lines_are_not_taken_for_points(monkeypatch: pytest.MonkeyPatch) -> None:
    # Thin 100-pixel circles of many points: their strongest line is a multiple of 4, the pixels' own pattern.
    for name in ("star_44pt03step.png", "star_50pt03step.png"):
        pixels = hasher_phash.angular_pixels(on_white(REAL / "radial" / name))
        assert angular_reading(pixels).order == 0, name
        with monkeypatch.context() as patched:
            patched.setattr(dct_hash, "GRID_PROMINENCE", 0.0)
            grid = angular_reading(pixels).order
        assert grid % 4 == 0 and grid != int(name[5:7]), name


def test_the_number_of_points_of_a_filled_star_is_read_and_of_a_flat_picture_not() -> None:
    for points in (5, 9, 24, 40, 64):
        star = Image.new("L", (ANGULAR_SIDE, ANGULAR_SIDE), 255)
        centre, outer, inner = (ANGULAR_SIDE - 1) / 2, 120, 80
        corners = [
            (centre + (outer if i % 2 == 0 else inner) * np.cos(np.pi * i / points),
             centre + (outer if i % 2 == 0 else inner) * np.sin(np.pi * i / points))
            for i in range(2 * points)
        ]  # fmt: skip
        ImageDraw.Draw(star).polygon(corners, fill=0)
        assert angular_reading(np.asarray(star)).order == points
    assert angular_reading(np.full((ANGULAR_SIDE, ANGULAR_SIDE), 128.0)).order == 0
    with pytest.raises(ValueError, match="256x256"):
        angular_reading(np.zeros((32, 32)))


def test_different_numbers_of_points_never_come_within_the_symmetric_distance() -> None:
    assert len(ORDER_PATTERNS) == len(BAND_PATTERNS) == MAX_ORDER + 1
    assert {p.bit_count() for p in ORDER_PATTERNS + BAND_PATTERNS} == {16}
    # Neither two numbers of points nor a radial hash and a band hash ever come within the symmetric distance.
    nearest = min((a ^ b).bit_count() for a, b in itertools.combinations(ORDER_PATTERNS + BAND_PATTERNS, 2))
    assert nearest >= ORDER_PATTERN_DISTANCE > SYMMETRIC_DISTANCE
    dct = hasher_phash.phash_dct(on_white(REAL / "radial" / "star_17pt03step.png"))
    assert radial_hash(2, dct) == radial_hash(MAX_ORDER + 1, dct) == 0
    assert hamming(radial_hash(17, dct), radial_hash(18, dct)) >= ORDER_PATTERN_DISTANCE


def test_distinct_many_pointed_stars_are_alike_in_their_symmetric_hash_yet_do_not_link() -> None:
    a, b = (decode((REAL / "radial" / name).read_bytes()) for name in ("star_44pt03step.png", "star_50pt03step.png"))
    on_white_hash = [symmetric_hash(hasher_phash.phash_dct(on_white(REAL / "radial" / n))) for n in
                     ("star_44pt03step.png", "star_50pt03step.png")]  # fmt: skip
    assert hamming(*on_white_hash) <= SYMMETRIC_DISTANCE  # what the rule would link, were they not radial
    assert match(a.phash, a.alternates, b.phash, b.alternates, a.symmetry, b.symmetry)[0] == NO_MATCH


def test_watermarked_radial_stars_are_radial_and_do_not_link_though_their_phashes_are_near() -> None:
    # The mark leaves the star asymmetric, and is most of what its pHash sees: distinct stars marked alike come
    # within 10 bits by pHash. Inside the inscribed circle each is still a ring.
    copies = [decode(jpeg(watermarked(on_white(path)))) for path in RADIAL]
    dcts = [hasher_phash.phash_dct(Image.open(io.BytesIO(jpeg(watermarked(on_white(path)))))) for path in RADIAL]
    assert any(odd_share(dct) > SYMMETRIC_SHARE for dct in dcts)  # not symmetric by the odd-frequency rule
    assert any(hamming(a.phash, b.phash) <= 10 for a, b in itertools.combinations(copies, 2))
    for copy in copies:
        assert copy.symmetric
    for a, b in itertools.combinations(copies, 2):
        assert match(a.phash, a.alternates, b.phash, b.alternates, a.symmetry, b.symmetry)[0] == NO_MATCH
