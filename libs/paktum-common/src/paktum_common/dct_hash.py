"""pHashes from a picture's 8x8 block of lowest DCT coefficients: the plain one and those of its mirror images.

The DCT-II of a row read backwards is the DCT of the row with coefficient k multiplied by (-1)^k (cos(pi k
(2(N-1-n)+1) / 2N) = (-1)^k cos(pi k (2n+1) / 2N)), and the DCT of a transposed picture is the transposed DCT.
So from one 32x32 DCT follow the DCTs of the picture mirrored, flipped, rotated by 90, 180 and 270 degrees and
transposed either way, by sign changes and a transposition of the 8x8 low-frequency block. Each hash is then
taken from its own transformed block: above the median of *that* block, as pHash does for a real picture
(a sign change moves the median, so no bit trick on the plain hash gives the same result).

A picture that is (nearly) symmetric gets a second kind of hash from the same DCT: see symmetric_hash.

Numpy only: the hasher feeds it imagehash's scipy DCT (its plain hash is imagehash.phash bit for bit), the
api a matrix DCT of its own (`dct_32`), for search by image without scipy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from paktum_common.phash import SYMMETRIC_BITS, TRANSFORMS, Symmetry, is_degenerate

HASH_SIDE = 8
PICTURE_SIDE = 32
# Never decode smaller than this on a side: imagehash resizes to 32x32, and a draft that went below that (a very
# wide panorama) would hash a picture with too few rows.
MIN_DRAFT_SIDE = 64
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


def fit(width: int, height: int, size: int) -> tuple[int, int]:
    """The size of `width` x `height` scaled to fit a `size` square, never enlarged."""
    scale = min(size / width, size / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def draft_box(width: int, height: int, thumbnail_size: int) -> tuple[int, int]:
    """What a JPEG of `width` x `height` is decoded to cover in the fast pHash mode (libjpeg's reduced scale): the
    picture fitted to the thumbnail, at least MIN_DRAFT_SIDE a side. The hasher and search by image both decode so,
    since the scale moves the pHash of a file by bits."""
    box = fit(width, height, thumbnail_size)
    return max(box[0], MIN_DRAFT_SIDE), max(box[1], MIN_DRAFT_SIDE)


def block_hash(block: np.ndarray) -> int:
    """pHash's rule on one block: a bit per coefficient above the block's median, row by row, first bit
    most significant."""
    bits = np.asarray(block > np.median(block), dtype=np.uint8).reshape(-1)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def signature(dct: np.ndarray) -> bytes:
    """The pHash block's coefficients themselves, which its bits reduce to above or below their median: the 63 but
    the first (the mean grey), less that median, scaled to whole numbers of -127 to 127 (one signed byte each).
    Two pictures whose pHashes are near by chance have signatures that point elsewhere (paktum_common.phash,
    signature_cosine); b"" for a flat block."""
    low = np.asarray(dct, dtype=np.float64)[:HASH_SIDE, :HASH_SIDE].reshape(-1)
    centred = (low - np.median(low))[1:]
    largest = float(np.abs(centred).max())
    if largest <= 0.0 or not np.isfinite(largest):
        return b""
    return np.rint(centred * (127.0 / largest)).astype(np.int8).tobytes()


def hashes_from_dct(dct: np.ndarray) -> tuple[int, tuple[int, ...]]:
    """The plain pHash and its alternates (TRANSFORMS[1:] in order) from a picture's DCT (at least 8x8)."""
    low = np.asarray(dct, dtype=np.float64)[:HASH_SIDE, :HASH_SIDE]
    hashes = [block_hash(block) for block in transformed_blocks(low).values()]
    return hashes[0], tuple(hashes[1:])


# ---- Symmetric pictures ---------------------------------------------------------------------------------------
#
# A picture symmetric left to right has DCT coefficients of odd horizontal frequency that are zero, one symmetric
# top to bottom those of odd vertical frequency: a star, a ring, a flag, a centred emblem leaves three quarters of
# pHash's 64 coefficients at about zero, which is about its median. Those bits come from rounding and JPEG noise:
# measured with bench/variants.py on 42 generated openclipart stars, a re-encode at quality 70 moved the plain
# pHash by 12 to 20 bits, and the plain hashes of distinct stars were as near to each other (648 of their 861
# pairs within 10 bits). No alternate can help, since each link goes through one side's plain hash and its noise.
#
# What such a picture does say lies in the coefficients of even frequency both ways, which symmetry leaves alone.
# The symmetric hash takes them from the whole 32x32 DCT (frequencies 0, 2, ..., 30 each way), each added to its
# transposition (so the hash is the same under every mirror and quarter turn: even coefficients keep their sign
# under a mirror, and a quarter turn transposes them), the 64 of lowest frequency but DC, and sets a bit for each
# above their median: 64 bits, so that it fits the registry's chunk tables as the pHash does. Measured with
# bench/variants.py (--symmetric) on 290 pictures, 42 of them stars: a re-encode, a half-size copy, grey, a mirror
# or a turn of a star within 4 bits; between distinct pictures one of which is symmetric, 395 false pairs within
# 4 bits where the plain pHash made 731 (648 of them between stars) within 10. How pairs are matched by
# it: paktum_common.phash (Symmetry, SYMMETRIC_DISTANCE).
SYMMETRIC_SHARE = 0.01  # a picture is symmetric when odd frequencies hold less than this share of its AC energy
_EVEN_ORDER = sorted(
    ((u, v) for u in range(PICTURE_SIDE // 2) for v in range(u, PICTURE_SIDE // 2)),
    key=lambda uv: (uv[0] + uv[1], uv[0]),
)[1 : SYMMETRIC_BITS + 1]
_EVEN_ROWS = np.array([u for u, _ in _EVEN_ORDER])
_EVEN_COLUMNS = np.array([v for _, v in _EVEN_ORDER])


# AC energy below this share of the DC's is rounding in the DCT of a flat picture (one grey level of contrast
# over a few pixels is some 1e-10 of it; a DCT's rounding of a flat picture about 1e-30).
_FLAT_ENERGY = 1e-20
_ROUNDING = 1e-12


def _flat(coefficients: np.ndarray, energy: float) -> bool:
    return energy <= _FLAT_ENERGY * max(float(coefficients[0, 0]) ** 2, 1.0)


def odd_share(dct: np.ndarray) -> float:
    """How much of the energy of pHash's 8x8 block (DC aside) lies in coefficients of odd frequency either way:
    near 0 for a picture symmetric both ways, about 3/4 for most others; 1.0 for a flat picture."""
    coefficients = np.asarray(dct, dtype=np.float64)
    energy = np.square(coefficients[:HASH_SIDE, :HASH_SIDE])
    energy[0, 0] = 0.0
    total = float(energy.sum())
    if _flat(coefficients, total):
        return 1.0
    even = float(energy[::2, ::2].sum())
    return (total - even) / total


def symmetric_hash(dct: np.ndarray) -> int:
    """64 bits: for each of the lowest even-by-even DCT coefficients (added to its transposition), whether
    it is above their median; the first bit most significant. The same for the picture turned or mirrored.
    0 (degenerate) for a flat picture, whose coefficients are rounding."""
    coefficients = np.asarray(dct, dtype=np.float64)
    if coefficients.shape != (PICTURE_SIDE, PICTURE_SIDE):
        raise ValueError(f"expected a {PICTURE_SIDE}x{PICTURE_SIDE} DCT, got {coefficients.shape}")
    folded = _folded(coefficients, SYMMETRIC_BITS)
    if _flat(coefficients, float(np.square(folded).sum())):
        return 0
    return block_hash(folded)


def _folded(coefficients: np.ndarray, count: int) -> np.ndarray:
    """The `count` lowest even-by-even coefficients but DC, each added to its transposition."""
    even = coefficients[::2, ::2]
    return (even + even.T)[_EVEN_ROWS[:count], _EVEN_COLUMNS[:count]]


# ---- Radial pictures -------------------------------------------------------------------------------------------
#
# A star of many points, a ring, a round badge: at 32x32 such a picture is the same under any turn, not only the
# quarter ones, so what is left of it is one radial profile, and distinct ones come out alike in every hash. In
# bench/variants.py's sample of openclipart, 41 generated stars of 21 to 97 points had symmetric hashes within 4
# bits of one another's in 4,764 file pairs, most of them at 0 to 2 bits, as near as a star's own re-encode; their
# plain pHashes are noise, and a site's mark in a corner is most of what the pHash of a marked one sees (distinct
# stars marked alike come within 0 to 12 bits). Such a picture is *radial*: at 32x32 within RADIAL_CORRELATION of
# itself turned by 45 and by 22.5 degrees, inside the inscribed circle (a mark in a corner lies outside it). A
# radial picture counts as symmetric (matched by symmetric hashes alone: its pHash says nothing of it), and its
# symmetric hashes are its radial hash and its band hash (by its number of points, below), or 0 (degenerate) when
# that cannot be read, so that, like a flat picture, it never links two images. Measured on 290 pictures and 3,690
# variants: 79 false pairs of distinct pictures where plain pHash has 737 (as groups after a cleanup, 111 against
# 982). Every star of 21 points or more in that sample scored 0.92 or more, a 13-point star 0.67, every other
# picture 0.79 or less but one near-flat striped wallpaper (0.93).
RADIAL_CORRELATION = 0.9
_RADIAL_TURNS = (45.0, 22.5)


def _turn_sampling(degrees: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear sampling of a 32x32 picture turned by `degrees` about its centre, at the pixels of the inscribed
    circle: for each such pixel the four source pixels (flat indices) and their weights, and the pixels' indices."""
    centre = (PICTURE_SIDE - 1) / 2
    y, x = np.mgrid[0:PICTURE_SIDE, 0:PICTURE_SIDE].astype(np.float64)
    inside = (y - centre) ** 2 + (x - centre) ** 2 <= centre**2
    angle = np.deg2rad(degrees)
    dy, dx = y[inside] - centre, x[inside] - centre
    sy = centre + dy * np.cos(angle) - dx * np.sin(angle)
    sx = centre + dy * np.sin(angle) + dx * np.cos(angle)
    return (*_bilinear(sy, sx, PICTURE_SIDE), np.flatnonzero(inside.reshape(-1)))


def _bilinear(y: np.ndarray, x: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear sampling of a `side` square picture at the points (y, x), clipped to it: for each point the four
    source pixels (flat indices, stacked first) and their weights."""
    y, x = np.clip(y, 0, side - 1 - 1e-9), np.clip(x, 0, side - 1 - 1e-9)
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    fy, fx = y - y0, x - x0
    sources = np.stack([y0 * side + x0, y0 * side + x0 + 1, (y0 + 1) * side + x0, (y0 + 1) * side + x0 + 1])
    weights = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    return sources, weights


def turn_correlation(dct: np.ndarray) -> float:
    """The least correlation of the 32x32 picture a DCT is of with itself turned by 45 and by 22.5 degrees, inside
    the inscribed circle: near 1 for a ring or a many-pointed star, lower for anything with corners or a direction;
    0 for a picture flat inside the circle."""
    pixels = (_IDCT_32 @ np.asarray(dct, dtype=np.float64) @ _IDCT_32.T).reshape(-1)
    least = 1.0
    for sources, weights, inside in _TURNED:
        own = pixels[inside] - pixels[inside].mean()
        turned = (pixels[sources] * weights).sum(axis=0)
        turned -= turned.mean()
        norm = float(np.linalg.norm(own) * np.linalg.norm(turned))
        if norm <= 1e-9 * max(1.0, float(np.abs(pixels).max())) ** 2:
            return 0.0
        least = min(least, float(own @ turned) / norm)
    return least


# What a radial picture's copies keep that another radial picture lacks is its number of points, beyond the 32x32:
# the angular frequency that stands out along rings about the centre, read from the picture at ANGULAR_SIDE. A
# star's points make one sharp line in the angular spectrum, and re-encoding spreads its noise over all of them, so
# the line is read when its energy is ORDER_PROMINENCE times the median of the frequencies about it (ORDER_SPAN
# either side). A share of the whole energy was the first measure; JPEG noise took it from half the stars. The
# pixel grid has lines of its own: a thin 100-pixel circle drawn in pixels has energy at every multiple of 4, so a
# multiple of 4 must also stand GRID_PROMINENCE times higher than the grid's first lines (_GRID_LINES). Measured by
# bench/radial.py on the 1,270 radial stars of openclipart outside bench/variants.py's sample: 75% of the originals
# and 66-76% of their full-size copies are read right (by the share rule 54% and 42-52%), 1-2% wrongly. A half-size
# copy of a 100-pixel star with more than 50 points has lost them. A radial picture with a number of points so read gets
# a *radial hash* as its symmetric hash: 32 bits that stand for the number (ORDER_PATTERNS, at least
# ORDER_PATTERN_DISTANCE bits apart, so that different numbers never come within SYMMETRIC_DISTANCE) and 32 bits of
# its lowest folded even coefficients above their median, so that two stars of one number of points but another
# profile stay apart. A crop enlarges the star and moves that profile, so a radial picture also gets a *band hash*
# (band_hash): its number of points' pattern of another family (BAND_PATTERNS, as far from the radial ones), the
# ratio of the inner to the outer radius of the rings its points lie in (the same at any scale), and 8 bits of
# profile. Measured by bench/radial.py: 3% crops of the held-out stars link 925 of 960 read instead of 777, 10% crops
# 900 instead of 233; false pairs of stars 3,336 of 805,815 instead of 1,401 (plain pHash: 620,000). Any other
# radial picture's symmetric hash is 0, and it links to nothing.
ANGULAR_SIDE = 256
ORDER_PROMINENCE = 10.0
ORDER_SPAN = 20
GRID_PROMINENCE = 5.0
MIN_ORDER = 5  # 3 or 4 points are not the same turned by 45 degrees (not radial); 4 is the pixel grid's line
MAX_ORDER = 128  # more points than this are not told apart at ANGULAR_SIDE
ORDER_PATTERN_DISTANCE = 8
_RINGS, _ANGLES = 48, 512
_GRID_LINES = (4, 8, 12)
BAND_LEVEL = 0.25
BAND_LOWEST = 0.3
BAND_LEVELS = 12


def _order_patterns() -> tuple[int, ...]:
    """Fixed 32-bit patterns with 16 bits set, two for each number of points up to MAX_ORDER (the radial hash's,
    then the band hash's), every two at least ORDER_PATTERN_DISTANCE bits apart (drawn from a seeded generator, so
    the same everywhere; the radial hash's first, as they were drawn before the band hash's existed)."""
    rng = np.random.default_rng(20261203)
    chosen: list[int] = []
    while len(chosen) < 2 * (MAX_ORDER + 1):
        bits = rng.permutation(32)[:16]
        pattern = int(np.sum(np.uint64(1) << bits.astype(np.uint64)))
        if all((pattern ^ other).bit_count() >= ORDER_PATTERN_DISTANCE for other in chosen):
            chosen.append(pattern)
    return tuple(chosen)


_PATTERNS = _order_patterns()
ORDER_PATTERNS, BAND_PATTERNS = _PATTERNS[: MAX_ORDER + 1], _PATTERNS[MAX_ORDER + 1 :]


_RADII = np.linspace(0.04, 0.495, _RINGS)  # fractions of the side


def _ring_sampling() -> tuple[np.ndarray, np.ndarray]:
    """Bilinear sampling of an ANGULAR_SIDE square picture along _RINGS circles about its centre (from 4% to
    49.5% of its side), _ANGLES points each: four source pixels (flat indices) and their weights per point."""
    centre = (ANGULAR_SIDE - 1) / 2
    radii = _RADII * ANGULAR_SIDE
    angles = np.arange(_ANGLES) * 2 * np.pi / _ANGLES
    y = centre + radii[:, None] * np.sin(angles)[None, :]
    x = centre + radii[:, None] * np.cos(angles)[None, :]
    return _bilinear(y, x, ANGULAR_SIDE)


_RING_SOURCES, _RING_WEIGHTS = _ring_sampling()


def _prominence(power: np.ndarray, frequency: int) -> float:
    """How far one angular frequency's energy stands above the median of those within ORDER_SPAN of it."""
    low = max(3, frequency - ORDER_SPAN)
    about = np.concatenate((power[low : max(low, frequency - 1)], power[frequency + 2 : frequency + ORDER_SPAN + 1]))
    floor = float(np.median(about))
    return float(power[frequency]) / floor if floor > 0.0 else float("inf")


class RadialReading(NamedTuple):
    """What angular_reading reads of a radial picture: its number of points (0: none read) and the band its points
    lie in, as the ratio of the band's inner radius to its outer one (the same at any scale; 0 without points)."""

    order: int
    band: float


def angular_reading(pixels: np.ndarray) -> RadialReading:
    """A radial picture's number of points, from its grey pixels at ANGULAR_SIDE x ANGULAR_SIDE: the angular
    frequency from MIN_ORDER with the most energy along the rings, when it is at most MAX_ORDER and stands out
    ORDER_PROMINENCE times (_prominence); a multiple of 4 must also stand out GRID_PROMINENCE times more than the
    pixel grid's own lines (_GRID_LINES). And the band of rings where that frequency has BAND_LEVEL of its
    greatest amplitude or more (_band)."""
    samples = np.asarray(pixels, dtype=np.float64)
    if samples.shape != (ANGULAR_SIDE, ANGULAR_SIDE):
        raise ValueError(f"expected {ANGULAR_SIDE}x{ANGULAR_SIDE} samples, got {samples.shape}")
    rings = (samples.reshape(-1)[_RING_SOURCES] * _RING_WEIGHTS).sum(axis=0)
    rings -= rings.mean(axis=1, keepdims=True)
    if float(np.mean(np.square(rings))) < 1e-6:  # flat along every ring (grey levels squared)
        return RadialReading(0, 0.0)
    spectra = np.abs(np.fft.rfft(rings, axis=1))
    power = np.square(spectra).sum(axis=0)
    order = MIN_ORDER + int(power[MIN_ORDER:].argmax())
    if order > MAX_ORDER:
        return RadialReading(0, 0.0)
    standing = _prominence(power, order)
    if standing < ORDER_PROMINENCE:
        return RadialReading(0, 0.0)
    if order % 4 == 0 and standing < GRID_PROMINENCE * max(_prominence(power, f) for f in _GRID_LINES if f != order):
        return RadialReading(0, 0.0)
    return RadialReading(order, _band(spectra[:, order]))


def _band(amplitudes: np.ndarray) -> float:
    """The inner radius over the outer one of the rings where one angular frequency has BAND_LEVEL of its greatest
    amplitude or more, each edge placed between the rings it falls between (linearly)."""
    level = BAND_LEVEL * float(amplitudes.max())
    inside = np.flatnonzero(amplitudes >= level)
    first, last = int(inside[0]), int(inside[-1])

    def edge(outside: int, within: int) -> float:
        if not 0 <= outside < len(amplitudes):
            return float(_RADII[within])
        share = (level - amplitudes[outside]) / (amplitudes[within] - amplitudes[outside])
        return float(_RADII[outside] + share * (_RADII[within] - _RADII[outside]))

    return edge(first - 1, first) / edge(last + 1, last)


def _profile(dct: np.ndarray, count: int) -> int:
    """The `count` lowest folded even coefficients above their median, a bit each; 0 when ties leave other than
    half of them set (a profile that says nothing)."""
    profile = block_hash(_folded(np.asarray(dct, dtype=np.float64), count))
    return profile if profile.bit_count() == count // 2 else 0


def radial_hash(order: int, dct: np.ndarray) -> int:
    """A radial picture's symmetric hash: its number of points' pattern, then 32 bits of its profile (the 32 lowest
    folded even coefficients above their median); 0 (degenerate) without a number of points."""
    if not 3 <= order <= MAX_ORDER:
        return 0
    profile = _profile(dct, 32)
    return ORDER_PATTERNS[order] << 32 | profile if profile else 0


def band_hash(reading: RadialReading, dct: np.ndarray) -> int:
    """A radial picture's second symmetric hash, which a crop leaves alone: its number of points' band pattern,
    then its band (RadialReading.band) in BAND_LEVELS steps from BAND_LOWEST to 1, as 2 x BAND_LEVELS bits (k ones
    then BAND_LEVELS - k ones the other way round, so two steps apart is two bits), then 8 bits of its 8 lowest
    folded even coefficients above their median; 0 (degenerate) without a number of points."""
    if not 3 <= reading.order <= MAX_ORDER:
        return 0
    profile = _profile(dct, 8)
    if not profile:
        return 0
    step = int(np.clip((reading.band - BAND_LOWEST) / (1.0 - BAND_LOWEST) * BAND_LEVELS, 0, BAND_LEVELS))
    ones = (1 << step) - 1
    band = ones << BAND_LEVELS | (~ones & ((1 << BAND_LEVELS) - 1))
    return BAND_PATTERNS[reading.order] << 32 | band << 8 | profile


class PictureHashes(NamedTuple):
    """What a picture is matched by: the plain pHash, its alternates (paktum_common.phash's slots), whether it is
    symmetric, and its symmetric hashes (the picture as hashed, then, for a transparent one, the other background)."""

    plain: int
    alternates: tuple[int, ...]
    symmetric: bool
    symmetric_hashes: tuple[int, ...]
    signature: bytes = b""  # of the plain pHash's block (signature()), then the picture's hue mark

    @property
    def symmetry(self) -> Symmetry | None:
        """As the registry stores it: None without symmetric hashes (as ImageDocument.symmetry)."""
        return Symmetry(self.symmetric, self.symmetric_hashes) if self.symmetric_hashes else None


def picture_hashes(dct: np.ndarray, radial: Callable[[], RadialReading] | None = None) -> PictureHashes:
    """Every hash of one picture from its 32x32 DCT. A radial picture is symmetric, and its symmetric hashes are its
    radial hash and its band hash, by `radial` (angular_reading of the picture, asked only of a radial one), or 0
    without a number of points."""
    plain, alternates = hashes_from_dct(dct)
    mark = signature(dct)
    is_radial = turn_correlation(dct) >= RADIAL_CORRELATION
    symmetric = is_radial or odd_share(dct) < SYMMETRIC_SHARE
    if not is_radial:
        return PictureHashes(plain, alternates, symmetric, (symmetric_hash(dct),), mark)
    reading = radial() if radial is not None else RadialReading(0, 0.0)
    if not reading.order:
        return PictureHashes(plain, alternates, symmetric, (0,), mark)
    hashes = (radial_hash(reading.order, dct), band_hash(reading, dct))
    return PictureHashes(plain, alternates, symmetric, hashes, mark)


def with_hues(hashed: PictureHashes, hues: bytes) -> PictureHashes:
    """The hashes with the picture's hue mark (paktum_common.hues.hue_mark) at the end of the signature, as the
    hasher stores them; none for a flat block, which has no signature."""
    return hashed._replace(signature=hashed.signature + hues) if hashed.signature else hashed


def with_other_background(hashed: PictureHashes, other: PictureHashes) -> PictureHashes:
    """A transparent picture's hashes: those of it as hashed, with those of it flattened on the other background
    as more alternates (the second background's slots) and a second symmetric hash."""
    return PictureHashes(
        hashed.plain,
        (*hashed.alternates, other.plain, *other.alternates),
        hashed.symmetric,
        (*hashed.symmetric_hashes, *other.symmetric_hashes),
        hashed.signature,
    )


def transparent_hashes(
    on_white: PictureHashes, on_black: PictureHashes, as_stored: Callable[[], PictureHashes]
) -> tuple[PictureHashes, str]:
    """A transparent picture's hashes, as the hasher stores them: of the first of it on white, as stored (alpha
    dropped) and on black whose pHash can link, with the other background's as more alternates (on white, when it
    is on black that is hashed); and which was hashed ("white", "stored", "black"). Most such pictures are art meant
    for a light page; an overlay whose colours sit under a faint alpha is flat on white."""
    if not is_degenerate(on_white.plain):
        return with_other_background(on_white, on_black), "white"
    stored = as_stored()
    if not is_degenerate(stored.plain):
        return with_other_background(stored, on_black), "stored"
    if not is_degenerate(on_black.plain):
        return with_other_background(on_black, on_white), "black"
    return with_other_background(on_white, on_black), "white"


def _dct_matrix(n: int) -> np.ndarray:
    # scipy.fftpack.dct's unnormalised type II: X_k = 2 sum_n x_n cos(pi k (2n + 1) / 2N).
    k = np.arange(n)[:, None]
    samples = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * samples + 1) / (2 * n))


_DCT_32 = _dct_matrix(PICTURE_SIDE)
_IDCT_32 = np.linalg.inv(_DCT_32)
_TURNED = tuple(_turn_sampling(degrees) for degrees in _RADIAL_TURNS)


def dct_32(pixels: np.ndarray) -> np.ndarray:
    """The 2-D DCT-II of 32x32 grey samples by two matrix products (what scipy.fftpack.dct computes along
    both axes, to rounding)."""
    samples = np.asarray(pixels, dtype=np.float64)
    if samples.shape != (PICTURE_SIDE, PICTURE_SIDE):
        raise ValueError(f"expected {PICTURE_SIDE}x{PICTURE_SIDE} samples, got {samples.shape}")
    dct = _DCT_32 @ samples @ _DCT_32.T
    # Matrix products leave rounding (some 1e-16 of the DC) where scipy's DCT of a flat picture gives exactly 0:
    # a flat picture's pHash would come out as noise instead of degenerate.
    dct[np.abs(dct) <= _ROUNDING * max(abs(float(dct[0, 0])), 1.0)] = 0.0
    return dct
