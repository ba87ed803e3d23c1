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


# ---- Matching through flips, rotations and the other background -------------------------------------------
#
# The hasher derives from its one DCT the hashes of the picture mirrored, flipped, rotated and transposed
# (paktum_hasher.phash), and for a picture with transparency also the hashes of it flattened on black. They
# travel beside the plain pHash as its *alternates*, in fixed slots: slots 0-6 are TRANSFORMS[1:] of the
# picture as hashed, slots 7-14 (transparent pictures only) are TRANSFORMS of it flattened on the other
# background. A pair links when the plain hashes are within the distance, or an alternate of one and the plain
# hash of the other within alternate_distance(distance); the stored and shown PHash stays the plain one.
#
# Names follow Pillow's Image.Transpose: rot90 turns counter-clockwise, mirror swaps left and right, flip
# swaps top and bottom, transpose mirrors along the main diagonal, transverse along the other one.
TRANSFORMS = ("none", "mirror", "flip", "rot180", "transpose", "rot90", "rot270", "transverse")
INVERSE = {"rot90": "rot270", "rot270": "rot90"}  # every other transform undoes itself
PRIMARY_SLOTS = len(TRANSFORMS) - 1
ALL_SLOTS = PRIMARY_SLOTS + len(TRANSFORMS)


# A match through an alternate counts this many bits more than the alternate differs by: it links within
# alternate_distance(distance). The alternates of unrelated pictures are 7 (15) more chances to come near by
# luck, and a mirrored or turned copy comes much nearer than that through its alternate. Measured with
# bench/variants.py --limit 120: at no penalty, 46 false pairs of pictures beside plain pHash's 41; at 2, 41, with
# the same recall of mirrors, rotations and flattenings (1.00, 0.99). The regroup's search between alternates and
# plain hashes costs about half as much at 8 bits as at 10.
ALTERNATE_PENALTY = 2


def alternate_distance(distance: int) -> int:
    """How near an alternate of one picture must be to the plain hash of the other for the two to match within
    `distance` (negative: no match through an alternate)."""
    return distance - ALTERNATE_PENALTY


def slot_transform(slot: int) -> str:
    """The transform an alternate slot holds (the background aside)."""
    return TRANSFORMS[slot + 1] if slot < PRIMARY_SLOTS else TRANSFORMS[slot - PRIMARY_SLOTS]


def inverse(transform: str) -> str:
    return INVERSE.get(transform, transform)


def match(plain_a: int, alternates_a: tuple[int, ...], plain_b: int, alternates_b: tuple[int, ...]) -> tuple[int, str]:
    """How near b is to a: the least distance over the plain pair and every alternate of one against the
    plain hash of the other (that one's bits plus ALTERNATE_PENALTY), and the transform that takes a to b
    ("mirror": b is a mirrored). A degenerate plain hash never matches (64, "none"), nor does a degenerate
    alternate; the plain pair wins ties."""
    if is_degenerate(plain_a) or is_degenerate(plain_b):
        return 64, "none"
    best, how = hamming(plain_a, plain_b), "none"
    for slot, alternate in enumerate(alternates_a):
        bits = hamming(alternate, plain_b) + ALTERNATE_PENALTY
        if bits < best and not is_degenerate(alternate):
            best, how = bits, slot_transform(slot)
    for slot, alternate in enumerate(alternates_b):
        bits = hamming(alternate, plain_a) + ALTERNATE_PENALTY
        if bits < best and not is_degenerate(alternate):
            best, how = bits, inverse(slot_transform(slot))
    return best, how


def alternates_to_text(alternates: tuple[int, ...]) -> str:
    """The Redis form of a picture's alternates: 16 hex digits each, one after the other."""
    return "".join(f"{h:016x}" for h in alternates)


def alternates_from_text(text: str) -> tuple[int, ...]:
    if len(text) % 16:
        raise ValueError(f"alternate pHashes are 16 hex digits each, got {len(text)} digits")
    return tuple(int(text[i : i + 16], 16) for i in range(0, len(text), 16))
