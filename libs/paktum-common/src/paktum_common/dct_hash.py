"""pHashes from a picture's 8x8 block of lowest DCT coefficients: the plain one and those of its mirror images.

The DCT-II of a row read backwards is the DCT of the row with coefficient k multiplied by (-1)^k (cos(pi k
(2(N-1-n)+1) / 2N) = (-1)^k cos(pi k (2n+1) / 2N)), and the DCT of a transposed picture is the transposed DCT.
So from one 32x32 DCT follow the DCTs of the picture mirrored, flipped, rotated by 90, 180 and 270 degrees and
transposed either way, by sign changes and a transposition of the 8x8 low-frequency block. Each hash is then
taken from its own transformed block: above the median of *that* block, as pHash does for a real picture
(a sign change moves the median, so no bit trick on the plain hash gives the same result).

Numpy only: the hasher feeds it imagehash's scipy DCT (its plain hash is imagehash.phash bit for bit), the
api a matrix DCT of its own (`dct_32`), for search by image without scipy.
"""

from __future__ import annotations

import numpy as np

from paktum_common.phash import TRANSFORMS

HASH_SIDE = 8
PICTURE_SIDE = 32
_SIGN = np.array([1.0 if k % 2 == 0 else -1.0 for k in range(HASH_SIDE)])
_ROWS = _SIGN[:, None]  # (-1)^u: u counts vertical frequency (axis 0)
_COLUMNS = _SIGN[None, :]  # (-1)^v: v counts horizontal frequency (axis 1)


def transformed_blocks(low: np.ndarray) -> dict[str, np.ndarray]:
    """The 8x8 low-frequency DCT block of the picture under each of TRANSFORMS (Pillow's Image.Transpose
    meanings: rot90 turns counter-clockwise, i.e. transposes and then flips top to bottom)."""
    blocks = {
        "none": low,
        "mirror": low * _COLUMNS,
        "flip": low * _ROWS,
        "rot180": low * _ROWS * _COLUMNS,
        "transpose": low.T,
        "rot90": low.T * _ROWS,
        "rot270": low.T * _COLUMNS,
        "transverse": low.T * _ROWS * _COLUMNS,
    }
    return {name: blocks[name] for name in TRANSFORMS}


def block_hash(block: np.ndarray) -> int:
    """pHash's rule on one block: a bit per coefficient above the block's median, row by row, first bit
    most significant."""
    bits = np.asarray(block > np.median(block), dtype=np.uint8).reshape(-1)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hashes_from_dct(dct: np.ndarray) -> tuple[int, tuple[int, ...]]:
    """The plain pHash and its alternates (TRANSFORMS[1:] in order) from a picture's DCT (at least 8x8)."""
    low = np.asarray(dct, dtype=np.float64)[:HASH_SIDE, :HASH_SIDE]
    hashes = [block_hash(block) for block in transformed_blocks(low).values()]
    return hashes[0], tuple(hashes[1:])


def _dct_matrix(n: int) -> np.ndarray:
    # scipy.fftpack.dct's unnormalised type II: X_k = 2 sum_n x_n cos(pi k (2n + 1) / 2N).
    k = np.arange(n)[:, None]
    samples = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * samples + 1) / (2 * n))


_DCT_32 = _dct_matrix(PICTURE_SIDE)


def dct_32(pixels: np.ndarray) -> np.ndarray:
    """The 2-D DCT-II of 32x32 grey samples by two matrix products (what scipy.fftpack.dct computes along
    both axes, to rounding)."""
    samples = np.asarray(pixels, dtype=np.float64)
    if samples.shape != (PICTURE_SIDE, PICTURE_SIDE):
        raise ValueError(f"expected {PICTURE_SIDE}x{PICTURE_SIDE} samples, got {samples.shape}")
    return _DCT_32 @ samples @ _DCT_32.T
