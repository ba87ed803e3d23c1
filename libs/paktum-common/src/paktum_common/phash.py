"""Perceptual hashes as unsigned 64-bit integers: comparing them, and telling the ones that say too little.

Computing them (imagehash, Pillow) is the hasher's: see paktum_hasher.phash."""

from __future__ import annotations


def hamming(a: int, b: int) -> int:
    """How many bits two hashes differ in."""
    return (a ^ b).bit_count()


# imagehash sets a bit for each of the 64 lowest DCT coefficients that is above their median, so
# a picture's hash has exactly 32 bits set, fewer only when coefficients tie at the median. Ties
# come from exact flatness or symmetry: a flat or gradient picture leaves just the DC bit (1 bit
# set); a mirror-symmetric star or icon on a plain background zeroes whole columns of
# coefficients (4 to 28 bits set). Such hashes say little, and sparse hashes sit close to each
# other whatever they show. Measured with bench/hasher.py on 541 distinct real images from
# Debian packages: every photograph and wallpaper hash had 32 bits set, or 1 (two gradient
# wallpapers); among 392 openclipart-png drawings, linking at distance 10 made one group of 48,
# mostly symmetric stars with 7 to 21 bits set. Leaving out hashes with fewer than N bits set,
# the largest group was 25 (N=16), 8 (N=20), 4 (N=24: four playing cards, alike indeed), and no
# smaller for N up to 32. N=24 leaves out 50 of the 392 drawings and none of the photographs.
# More than 64 - 24 bits set never comes out of imagehash; the rule is symmetric for hashes made
# elsewhere (an inverted convention, another library).
DEGENERATE_MIN_BITS = 24


def is_degenerate(phash: int) -> bool:
    """True when the hash carries too little information to compare pictures by.

    Such a hash is stored and shown, but never links two images as variants.
    """
    ones = phash.bit_count()
    return ones < DEGENERATE_MIN_BITS or ones > 64 - DEGENERATE_MIN_BITS
