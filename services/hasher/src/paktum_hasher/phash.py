"""Computing a pHash: imagehash's DCT hash of a decoded picture, as an unsigned 64-bit integer, and from the
same DCT the hashes of its mirror images and rotations and its symmetric hash (paktum_common.dct_hash)."""

from __future__ import annotations

import numpy as np

# imagehash imports its DCT on the first hash: a second or two, paid by every new decode process unless the
# fork server (which imports this module) already holds it.
import scipy.fftpack
from PIL import Image

from paktum_common.dct_hash import (
    ANGULAR_SIDE,
    PICTURE_SIDE,
    PictureHashes,
    angular_reading,
    hashes_from_dct,
    picture_hashes,
)
from paktum_common.hues import HUE_SIDE, hue_mark

# imagehash.phash's resampling (its ANTIALIAS is Pillow's LANCZOS).
RESAMPLE = Image.Resampling.LANCZOS


def phash_dct(image: Image.Image) -> np.ndarray:
    """The 32x32 DCT imagehash.phash takes its bits from: the same steps, so the same floating-point values."""
    pixels = np.asarray(image.convert("L").resize((PICTURE_SIDE, PICTURE_SIDE), RESAMPLE))
    return np.asarray(scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1))


def phash_set(image: Image.Image) -> tuple[int, tuple[int, ...]]:
    """imagehash.phash of `image` as an integer, and its alternates: the pHashes of the picture under
    TRANSFORMS[1:] (mirror, flip, rot180, transpose, rot90, rot270, transverse), from the one DCT."""
    return hashes_from_dct(phash_dct(image))


def hashes_of(image: Image.Image) -> PictureHashes:
    """phash_set's hashes, and whether the picture is symmetric with its symmetric hash, from the one DCT (and,
    for a radial picture only, its number of points and their band from the picture at ANGULAR_SIDE)."""
    return picture_hashes(phash_dct(image), lambda: angular_reading(angular_pixels(image)))


def hue_pixels(picture: Image.Image) -> np.ndarray:
    """The RGB picture at HUE_SIDE x HUE_SIDE (a box filter) that paktum_common.hues.hue_mark reads."""
    return np.asarray(picture.convert("RGB").resize((HUE_SIDE, HUE_SIDE), Image.Resampling.BOX))


def hues_of_picture(picture: Image.Image) -> bytes:
    """The hue mark of a picture as seen, in colour (paktum_common.hues)."""
    return hue_mark(hue_pixels(picture))


def angular_pixels(image: Image.Image) -> np.ndarray:
    """The grey picture at ANGULAR_SIDE x ANGULAR_SIDE that paktum_common.dct_hash.angular_reading reads."""
    return np.asarray(image.convert("L").resize((ANGULAR_SIDE, ANGULAR_SIDE), RESAMPLE))


def phash_int(image: Image.Image) -> int:
    """imagehash.phash of `image`, as an unsigned 64-bit integer (first bit most significant)."""
    return phash_set(image)[0]


def bits_to_int(bits: np.ndarray) -> int:
    """A boolean array (imagehash's ImageHash.hash), read row by row, as an integer: first bit most significant."""
    value = 0
    for bit in bits.flatten():
        value = (value << 1) | int(bool(bit))
    return value
