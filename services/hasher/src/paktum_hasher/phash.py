"""Computing a pHash: imagehash's DCT hash of a decoded picture, as an unsigned 64-bit integer."""

from __future__ import annotations

import imagehash
import numpy as np

# imagehash imports its DCT on the first hash: a second or two, paid by every new decode process unless the
# fork server (which imports this module) already holds it.
import scipy.fftpack  # noqa: F401
from PIL import Image


def phash_int(image: Image.Image) -> int:
    """imagehash.phash of `image`, as an unsigned 64-bit integer (first bit most significant)."""
    return bits_to_int(imagehash.phash(image).hash)


def bits_to_int(bits: np.ndarray) -> int:
    """A boolean array (imagehash's ImageHash.hash), read row by row, as an integer: first bit most significant."""
    value = 0
    for bit in bits.flatten():
        value = (value << 1) | int(bool(bit))
    return value
