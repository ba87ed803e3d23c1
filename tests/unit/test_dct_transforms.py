"""The hashes of a picture's mirror images and rotations, derived from its one DCT, against hashing the really
transformed picture (real files from tests/fixtures/real)."""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import pytest
import scipy.fftpack
from PIL import Image

from paktum_common.dct_hash import dct_32, hashes_from_dct
from paktum_common.phash import TRANSFORMS, hamming, inverse, is_degenerate, match
from paktum_hasher.phash import bits_to_int, phash_set

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
FILES = sorted((REAL / "jpeg").glob("*.jpg"))
TURN = Image.Transpose
PILLOW = {
    "mirror": TURN.FLIP_LEFT_RIGHT,
    "flip": TURN.FLIP_TOP_BOTTOM,
    "rot180": TURN.ROTATE_180,
    "transpose": TURN.TRANSPOSE,
    "rot90": TURN.ROTATE_90,
    "rot270": TURN.ROTATE_270,
    "transverse": TURN.TRANSVERSE,
}


def real_hash(image: Image.Image) -> int:
    return bits_to_int(imagehash.phash(image).hash)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_the_plain_hash_is_imagehash_phash(path: Path) -> None:
    image = Image.open(path)
    assert phash_set(image)[0] == real_hash(image)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_alternate_is_exactly_the_hash_of_the_transformed_32x32_picture(path: Path) -> None:
    # pHash hashes the picture scaled to 32x32 grey: transforming that picture is transforming the DCT, exactly.
    grey = Image.open(path).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    plain, alternates = phash_set(grey)
    assert plain == real_hash(grey)
    for name, alternate in zip(TRANSFORMS[1:], alternates, strict=True):
        assert alternate == real_hash(grey.transpose(PILLOW[name])), name


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_alternate_is_within_a_few_bits_of_hashing_the_transformed_file(path: Path) -> None:
    # At full size the 32x32 scaling is done in the other order for a quarter turn, so a few bits may differ.
    image = Image.open(path).convert("RGB")
    _, alternates = phash_set(image)
    for name, alternate in zip(TRANSFORMS[1:], alternates, strict=True):
        assert hamming(alternate, real_hash(image.transpose(PILLOW[name]))) <= 4, name
        assert hamming(alternate, real_hash(image)) > 10, name  # a different picture to pHash, else this proves nothing


def test_the_matrix_dct_matches_scipy() -> None:
    grey = np.asarray(Image.open(FILES[0]).convert("L").resize((32, 32), Image.Resampling.LANCZOS))
    reference = scipy.fftpack.dct(scipy.fftpack.dct(grey, axis=0), axis=1)
    assert np.allclose(dct_32(grey), reference, rtol=1e-9, atol=1e-6)
    assert hashes_from_dct(dct_32(grey)) == phash_set(Image.fromarray(grey))
    with pytest.raises(ValueError, match="32x32"):
        dct_32(grey[:16])


def test_match_names_the_transform_from_either_side() -> None:
    image = Image.open(FILES[1]).convert("RGB")
    plain, alternates = phash_set(image)
    turned, turned_alternates = phash_set(image.transpose(TURN.ROTATE_90))
    assert hamming(plain, turned) > 10
    bits, how = match(plain, alternates, turned, turned_alternates)
    assert bits <= 4 and how == "rot90"
    assert match(turned, turned_alternates, plain, alternates) == (bits, "rot270")
    # Only the other side's alternates known (an image indexed before they were computed): the same answer.
    assert match(plain, (), turned, turned_alternates)[1] == "rot90"
    assert match(plain, alternates, plain, alternates) == (0, "none")
    assert match(0, alternates, turned, ()) == (64, "none")  # a degenerate hash never matches
    assert [inverse(t) for t in TRANSFORMS] == ["none", "mirror", "flip", "rot180", "transpose", "rot270", "rot90",
                                                "transverse"]  # fmt: skip
    assert not any(is_degenerate(h) for h in alternates)
