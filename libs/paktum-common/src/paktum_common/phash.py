"""Perceptual hashes as unsigned 64-bit integers: comparing them, and telling the ones that say too little.

Computing them (imagehash, Pillow) is the hasher's: see paktum_hasher.phash."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from paktum_common.hues import HUES_LENGTH, hues_agree


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
# plain hashes costs about half as much at 8 bits as at 10. At 4 (within 6 bits), as the api shows them after a
# cleanup (bench/variants.py, groups): 398 false pairs of pictures instead of 475 on all 290 pictures and 3,690
# variants (plain pHash: 975), 22.4 instead of 28.4 with two variants per picture (plain: 34.6), for 0.01 less
# recall of a few kinds (two hashes with 32 bits set each differ in an even number of bits, so 6 and 7 are one).
ALTERNATE_PENALTY = 4


NO_MATCH = 64  # the distance match() gives a pair that does not match in any way


def alternate_distance(distance: int) -> int:
    """How near an alternate of one picture must be to the plain hash of the other for the two to match within
    `distance` (negative: no match through an alternate)."""
    return distance - ALTERNATE_PENALTY


def slot_transform(slot: int) -> str:
    """The transform an alternate slot holds (the background aside)."""
    return TRANSFORMS[slot + 1] if slot < PRIMARY_SLOTS else TRANSFORMS[slot - PRIMARY_SLOTS]


def inverse(transform: str) -> str:
    return INVERSE.get(transform, transform)


def _plain_match(
    plain_a: int, alternates_a: tuple[int, ...], plain_b: int, alternates_b: tuple[int, ...]
) -> tuple[int, str]:
    """The least distance over the plain pair and every alternate of one against the plain hash of the other
    (plus ALTERNATE_PENALTY), with its transform; degenerate hashes never match."""
    if is_degenerate(plain_a) or is_degenerate(plain_b):
        return NO_MATCH, "none"
    through = _through(plain_a, alternates_a, plain_b, alternates_b, ALTERNATE_PENALTY, skip_degenerate=True)
    return _nearest(hamming(plain_a, plain_b), through)


def _nearest(plain: int, through: tuple[int, str]) -> tuple[int, str]:
    """The least of the plain pair's distance and _through's, with the transform it goes through; the plain pair
    wins ties."""
    return through if through[0] < plain else (plain, "none")


def _through(
    plain_a: int,
    alternates_a: tuple[int, ...],
    plain_b: int,
    alternates_b: tuple[int, ...],
    penalty: int,
    skip_degenerate: bool,
) -> tuple[int, str]:
    """The least distance of an alternate of either against the other's plain hash (plus `penalty`) and the
    transform from a to b it goes through, the first of the nearest; NO_MATCH and "none" when none is nearer."""
    best, how = NO_MATCH, "none"
    for slot, alternate in enumerate(alternates_a):
        bits = hamming(alternate, plain_b) + penalty
        if bits < best and not (skip_degenerate and is_degenerate(alternate)):
            best, how = bits, slot_transform(slot)
    for slot, alternate in enumerate(alternates_b):
        bits = hamming(alternate, plain_a) + penalty
        if bits < best and not (skip_degenerate and is_degenerate(alternate)):
            best, how = bits, inverse(slot_transform(slot))
    return best, how


def match(
    plain_a: int,
    alternates_a: tuple[int, ...],
    plain_b: int,
    alternates_b: tuple[int, ...],
    symmetry_a: Symmetry | None = None,
    symmetry_b: Symmetry | None = None,
    distance: int | None = None,
    signatures: tuple[bytes, bytes] = (b"", b""),
) -> tuple[int, str]:
    """How near b is to a, and the transform that takes a to b ("mirror": b is a mirrored).

    When both sides carry a Symmetry and either picture is symmetric, only the symmetric hashes count
    (symmetric_distance; NO_MATCH beyond SYMMETRIC_DISTANCE), and the transform is the nearest one by the pHashes,
    as a label. Otherwise the least distance over the plain pair and every alternate of one against the plain hash
    of the other (that one's bits plus ALTERNATE_PENALTY). A degenerate plain hash never matches (NO_MATCH,
    "none"), nor does a degenerate alternate; the plain pair wins ties.

    With a `distance`, whether they link at it: the least distance of a way that links, NO_MATCH when none does;
    the plain pair links as plain_links says, given the two `signatures`; a pair that links no other way links at
    its pHash distance when the signatures are neighbours (signature_neighbours; not a symmetric pair); and no way
    links two pictures whose signatures' hue marks disagree (paktum_common.hues)."""
    if distance is not None and not hues_agree(hues_of(signatures[0]), hues_of(signatures[1])):
        return NO_MATCH, "none"
    if symmetry_a is not None and symmetry_b is not None and (symmetry_a.symmetric or symmetry_b.symmetric):
        bits = symmetric_distance(symmetry_a.hashes, symmetry_b.hashes)
        if bits > (SYMMETRIC_DISTANCE if distance is None else min(SYMMETRIC_DISTANCE, distance)):
            return NO_MATCH, "none"
        # The label: the transform under which b's pHash comes nearest a's, whatever the distance (degenerate
        # hashes too: a symmetric picture's pHash is noisy, not meaningless).
        label = _through(plain_a, alternates_a, plain_b, alternates_b, 0, skip_degenerate=False)
        return bits, _nearest(hamming(plain_a, plain_b), label)[1]
    if distance is None:
        return _plain_match(plain_a, alternates_a, plain_b, alternates_b)
    plain = hamming(plain_a, plain_b)
    if is_degenerate(plain_a) or is_degenerate(plain_b):
        return (plain, "none") if signature_neighbours(*signatures) else (NO_MATCH, "none")
    through, how = _through(plain_a, alternates_a, plain_b, alternates_b, ALTERNATE_PENALTY, skip_degenerate=True)
    if plain <= through and plain_links(plain, distance, signature_cosine(*signatures)):
        return plain, "none"
    if through <= distance:
        return through, how
    # Signature neighbours: a copy by its coefficients, however far its bits (at its pHash distance).
    return (plain, "none") if signature_neighbours(*signatures) else (NO_MATCH, "none")


# ---- Signatures -----------------------------------------------------------------------------------------------
#
# pHash keeps only whether each of its 64 coefficients is above their median. Two pictures whose pHashes come
# within the distance by chance have coefficients that point elsewhere all the same: the *signature*
# (paktum_common.dct_hash.signature) keeps the 63 coefficients, as signed bytes, and the cosine of two signatures
# tells a chance pair from a copy. So a plain pair in the last SIGNATURE_MARGIN bits of the distance links only
# when the signatures agree to SIGNATURE_KEEP (the regroup, search by image, ingest linking). Measured
# with bench/variants.py on 290 pictures and 3,690 variants: of the plain pairs 10 bits apart, 0.85 or more kept
# 436 of 474 true pairs and 45 of 161 false ones; as groups after a cleanup, 77 false picture pairs instead of 111
# and 3,289 false file pairs instead of 7,785, for 0.01 less recall of 10% crops and brightness. On 300 other
# openclip art pictures (held out), 63 and 9,342 instead of 122 and 17,319. Taking plain pairs 2 bits beyond the
# distance at 0.90 found a 10% crop half as often again, but linked more distinct pictures than plain pHash does
# with one or two copies of each on the held-out ones (19.2 pairs against 14.4), and that wider search took the
# regroup past its 15 s at a million images: not done. Images hashed before signatures have none: they link as
# before, within the distance.
#
# A signature ends with the picture's hue mark (paktum_common.hues: HUES_LENGTH bytes more), which refuses every
# way of linking two pictures of other colours; one made before hue marks were kept has none.
SIGNATURE_LENGTH = 63
MARKED_LENGTH = SIGNATURE_LENGTH + HUES_LENGTH
SIGNATURE_MARGIN = 2
SIGNATURE_KEEP = 0.85


def coefficients_of(signature: bytes) -> bytes:
    """A signature's coefficient part (SIGNATURE_LENGTH signed bytes), b"" when it has none."""
    return signature[:SIGNATURE_LENGTH] if len(signature) in (SIGNATURE_LENGTH, MARKED_LENGTH) else b""


def hues_of(signature: bytes) -> bytes:
    """A signature's hue mark (paktum_common.hues), b"" when it has none."""
    return signature[SIGNATURE_LENGTH:] if len(signature) == MARKED_LENGTH else b""


def signature_cosine(a: bytes, b: bytes) -> float | None:
    """The cosine of two signatures' coefficients (signed bytes); None when either has none."""
    a, b = coefficients_of(a), coefficients_of(b)
    if not a or not b:
        return None
    va = np.frombuffer(a, dtype=np.int8).astype(np.int64)
    vb = np.frombuffer(b, dtype=np.int8).astype(np.int64)
    norm = math.sqrt(int(va @ va) * int(vb @ vb))  # whole numbers: exact, as a sum in Python would be
    return int(va @ vb) / norm if norm else None


def plain_links(bits: int, distance: int, cosine: float | None) -> bool:
    """Whether two plain pHashes `bits` apart link at `distance`, given their signatures' cosine (None: either has
    none, and they link within the distance as they always did)."""
    if bits > distance:
        return False
    return bits <= distance - SIGNATURE_MARGIN or cosine is None or cosine >= SIGNATURE_KEEP


# ---- Signature neighbours -------------------------------------------------------------------------------------
#
# On a smooth picture (a gradient wallpaper, a night sky) most of pHash's coefficients sit near their median, and a
# faint watermark or a crop flips a dozen of its bits or more, while the coefficients themselves hardly move: the
# watermarked copies of KDE's ColdRipple and DarkestHour are 12 and 20 bits from their wallpapers, at signature
# cosine 0.997 and 0.992. So a pair also links when its signatures alone say it is a copy: their SimHashes (the signs
# of the 63 coefficients against SIMHASH_BITS fixed hyperplanes, so that two signatures at cosine c differ in
# about SIMHASH_BITS * arccos(c) / pi bits) within SIMHASH_DISTANCE, and their cosine NEIGHBOUR_KEEP or more;
# never a symmetric picture (its coefficients are mostly zero: paktum_common.dct_hash), and never two pictures whose
# hues disagree. The regroup finds such pairs by a chunk join over the SimHashes (paktum_cleanup.variants); search
# by image and ingest linking through the registry's SimHash table (paktum_common.registry). Measured with
# bench/variants.py: on KDE's 34 wallpapers (--packages plasma-workspace-wallpapers) watermarks 0.76 -> 0.85, ahead
# of PDQ's 0.79, and no false pair; 11 more variants on the sample, 18 and 26 on two held-out draws of 300, for 2
# more false pairs of files on the sample and none held out. At 0.98, 19, 23 and 28 more, for 20 and 62 more false
# pairs of files (two warning signs, a yellow triangle each, at 0.985); at 0.97, 2 more false pairs of pictures.
#
# Only a picture whose pHash is fragile can have neighbours: at least NEIGHBOUR_FLAT of its 63 coefficients within
# NEIGHBOUR_NEAR (of 127) of their median, where a faint change flips a bit. Measured on the sample, two held-out
# draws and KDE's wallpapers: 24-36% of the pictures are such, and of the copies more than 10 bits from their picture
# whose signatures are neighbours, 96%, 100%, 100% and 100% are between two such pictures (96% at 12 as well). Only
# they have a SimHash, in the regroup and in the registry, where one a picture costs 509 bytes of Redis at a million
# (bench/registry.py).
SIMHASH_BITS = 64
SIMHASH_DISTANCE = 4
NEIGHBOUR_KEEP = 0.99
NEIGHBOUR_FLAT = 18
NEIGHBOUR_NEAR = 2
SIMHASH_BLOCK = 65_536


def _simhash_planes() -> np.ndarray:
    """SIMHASH_BITS hyperplanes of SIGNATURE_LENGTH signs each, the same everywhere (from SHA-256, not a random
    generator whose stream may change between numpy versions)."""
    planes = np.empty((SIMHASH_BITS, SIGNATURE_LENGTH), dtype=np.int64)
    for k in range(SIMHASH_BITS):
        digest = hashlib.sha256(f"paktum signature simhash {k}".encode()).digest()
        bits = np.unpackbits(np.frombuffer(digest, dtype=np.uint8))[:SIGNATURE_LENGTH]
        planes[k] = 2 * bits.astype(np.int64) - 1
    return planes


_PLANES = _simhash_planes()
_PLANES_T = np.ascontiguousarray(_PLANES.T, dtype=np.float32)


def simhashes(coefficients: np.ndarray) -> np.ndarray:
    """The SimHash of each row of signature coefficients ((n, SIGNATURE_LENGTH) signed bytes): a bit per plane, set
    when the row lies on its positive side."""
    # In floating point for the matrix product's speed: every sum is a whole number under 2**14, so exact.
    rows = np.asarray(coefficients)
    codes = np.empty(rows.shape[0], dtype=np.uint64)
    for start in range(0, rows.shape[0], SIMHASH_BLOCK):  # a block at a time: memory bounded at a million
        above = rows[start : start + SIMHASH_BLOCK].astype(np.float32) @ _PLANES_T > 0
        codes[start : start + SIMHASH_BLOCK] = np.packbits(above, axis=1).view(">u8").ravel()  # first plane first
    return codes


def fragile_rows(coefficients: np.ndarray) -> np.ndarray:
    """Which rows of signature coefficients ((n, SIGNATURE_LENGTH) signed bytes) can have neighbours: NEIGHBOUR_FLAT
    or more within NEIGHBOUR_NEAR of the median, and not all of them (a flat picture: no cosine)."""
    near = np.abs(np.asarray(coefficients, dtype=np.int16)) <= NEIGHBOUR_NEAR
    return (near.sum(axis=1) >= NEIGHBOUR_FLAT) & ~near.all(axis=1)


def simhash_of(signature: bytes) -> int | None:
    """One signature's SimHash; None when it has no coefficients or its picture cannot have neighbours
    (fragile_rows)."""
    coefficients = coefficients_of(signature)
    if not coefficients:
        return None
    row = np.frombuffer(coefficients, dtype=np.int8)[None, :]
    return int(simhashes(row)[0]) if fragile_rows(row)[0] else None


def simhashes_of(signatures: Mapping[str, bytes]) -> dict[str, int]:
    """md5 -> SimHash of the signatures that have one (simhash_of)."""
    return {md5: code for md5, signature in signatures.items() if (code := simhash_of(signature)) is not None}


def signature_neighbours(a: bytes, b: bytes) -> bool:
    """Whether two signatures say their pictures are copies by themselves (both fragile_rows, SIMHASH_DISTANCE,
    NEIGHBOUR_KEEP)."""
    first, second = simhash_of(a), simhash_of(b)
    if first is None or second is None or hamming(first, second) > SIMHASH_DISTANCE:
        return False
    cosine = signature_cosine(a, b)
    return cosine is not None and cosine >= NEIGHBOUR_KEEP


def alternates_to_text(alternates: tuple[int, ...]) -> str:
    """The Redis form of a picture's alternates: 16 hex digits each, one after the other."""
    return "".join(f"{h:016x}" for h in alternates)


def alternates_from_text(text: str) -> tuple[int, ...]:
    if len(text) % 16:
        raise ValueError(f"alternate pHashes are 16 hex digits each, got {len(text)} digits")
    return tuple(int(text[i : i + 16], 16) for i in range(0, len(text), 16))


# ---- Symmetric pictures ---------------------------------------------------------------------------------------
#
# A picture symmetric left to right or top to bottom (a star, a ring, an emblem) leaves three quarters of pHash's
# coefficients at about zero, so its plain pHash and alternates are mostly rounding and JPEG noise: a re-encode
# moves them by 12 to 20 bits, and distinct stars come as near to each other. The hasher then also takes a
# *symmetric hash* from the even-by-even DCT coefficients, which symmetry leaves alone and which no mirror or
# quarter turn changes (paktum_common.dct_hash). A pair one of whose pictures is symmetric is matched by the
# symmetric hashes alone, within SYMMETRIC_DISTANCE. A *radial* picture (a ring, a star of many points: the same
# at 32x32 under any turn) counts as symmetric, and its symmetric hashes stand for its number of points when that
# can be read beyond the 32x32, or are degenerate: distinct ones are as alike at 32x32 as a copy is
# (paktum_common.dct_hash.turn_correlation, radial_hash, band_hash). Measured with bench/variants.py on 290 pictures
# (3,690 variants), the pairs of distinct pictures linked: 79 (plain pHash 737); as groups after a cleanup, 111
# (plain pHash 982). Every picture hashed carries its symmetric hashes (a symmetric picture's watermarked or
# cropped copy may no longer be symmetric itself, yet keeps its symmetric hash); those hashed before have none,
# and are matched the pHash way until rehashed (`paktum rehash`, paktum_hasher.rehash).
SYMMETRIC_BITS = 64
# Two pictures one of which is symmetric are variants when their symmetric hashes are within this many bits
# (bench/variants.py: 6 adds 26 false pairs for 0.01 to 0.02 more recall on crops and brightness).
SYMMETRIC_DISTANCE = 4


class Symmetry(NamedTuple):
    """Whether a picture is symmetric, and its symmetric hashes: the picture as hashed, then (a transparent one) on
    the other background."""

    symmetric: bool
    hashes: tuple[int, ...]


def is_degenerate_symmetric(value: int) -> bool:
    """True for a symmetric hash that says nothing: the median of 64 distinct values splits them in halves, so
    anything else comes from ties or a flat picture (0)."""
    return value.bit_count() != SYMMETRIC_BITS // 2


def symmetric_distance(a: Sequence[int], b: Sequence[int]) -> int:
    """The least distance between any usable symmetric hash of one and any of the other (a transparent picture's
    on white may be flat, and so degenerate, where on black it is not); NO_MATCH when either has none usable."""
    best = NO_MATCH
    for mine in a:
        if not is_degenerate_symmetric(mine):
            for theirs in b:
                if not is_degenerate_symmetric(theirs):
                    best = min(best, hamming(mine, theirs))
    return best


def symmetry_to_text(symmetry: Symmetry) -> str:
    """The Redis form: "s" (symmetric) or "-", then 16 hex digits per symmetric hash."""
    return ("s" if symmetry.symmetric else "-") + alternates_to_text(symmetry.hashes)


def symmetry_from_text(text: str) -> Symmetry:
    if not text or text[0] not in "s-":
        raise ValueError(f"a symmetry record starts with 's' or '-', got {text[:1]!r}")
    return Symmetry(text[0] == "s", alternates_from_text(text[1:]))
