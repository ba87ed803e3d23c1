"""Perceptual hashes as unsigned 64-bit integers: computing, comparing, converting."""

from __future__ import annotations

import imagehash
import numpy as np
from PIL import Image


def phash_int(image: Image.Image) -> int:
    """imagehash.phash of `image`, as an unsigned 64-bit integer (first bit most significant)."""
    return bits_to_int(imagehash.phash(image).hash)


def bits_to_int(bits: np.ndarray) -> int:
    value = 0
    for bit in bits.flatten():
        value = (value << 1) | int(bool(bit))
    return value


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


# A hash this close to all-zero or all-one bits says little about the picture (a flat or near-flat
# image, or transparent art whose alpha was dropped): such hashes never link variants.
DEGENERATE_MIN_BITS = 8


def is_degenerate(phash: int) -> bool:
    """True when the hash carries too little information to compare pictures by."""
    ones = phash.bit_count()
    return ones < DEGENERATE_MIN_BITS or ones > 64 - DEGENERATE_MIN_BITS
