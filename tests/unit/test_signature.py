"""Signatures (paktum_common.dct_hash.signature) and the rule they decide plain pairs by (paktum_common.phash), and
the regroup applying that rule exactly (paktum_cleanup.variants, against match() on every pair)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import scipy.fftpack

from paktum_cleanup import variants
from paktum_common.dct_hash import picture_hashes, signature
from paktum_common.phash import (
    ALTERNATE_PENALTY,
    NEIGHBOUR_FLAT,
    NEIGHBOUR_KEEP,
    NO_MATCH,
    SIGNATURE_KEEP,
    SIGNATURE_LENGTH,
    match,
    plain_links,
    signature_cosine,
)
from tests.imagefiles import picture
from tests.unit.test_variants import METHODS, usable_flip, with_alternates


def dct(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(scipy.fftpack.dct(scipy.fftpack.dct(np.asarray(pixels, np.float64), axis=0), axis=1))


def grey(seed: int) -> np.ndarray:
    return np.asarray(picture(seed).convert("L").resize((32, 32)), dtype=np.float64)


def test_a_signature_is_the_blocks_coefficients_as_signed_bytes_and_none_for_a_flat_block() -> None:
    coefficients = dct(grey(1))
    mark = signature(coefficients)
    assert len(mark) == SIGNATURE_LENGTH and max(abs(v) for v in np.frombuffer(mark, np.int8)) == 127
    assert signature(dct(np.full((32, 32), 90.0))) == b""
    assert picture_hashes(coefficients).signature == mark


def test_brightness_and_contrast_leave_a_signature_pointing_the_same_way() -> None:
    pixels = grey(2)
    mark = signature(dct(pixels))
    assert signature_cosine(mark, signature(dct(0.6 * pixels + 70))) > 0.999
    assert signature_cosine(mark, signature(dct(grey(3)))) < 0.5  # another picture
    assert signature_cosine(mark, mark[:-1]) is None and signature_cosine(b"", mark) is None


@pytest.mark.parametrize(
    ("bits", "cosine", "links"),
    [
        (8, None, True), (8, -1.0, True),  # well within the distance: always
        (10, None, True), (10, SIGNATURE_KEEP, True), (10, SIGNATURE_KEEP - 0.01, False),  # its last bits: agreeing
        (11, 1.0, False), (12, None, False),  # beyond the distance: never, however they agree
    ],
)  # fmt: skip
def test_plain_links(bits: int, cosine: float | None, links: bool) -> None:
    assert plain_links(bits, 10, cosine) is links


FLAT = slice(20, 20 + NEIGHBOUR_FLAT)  # coefficients at the median: a fragile pHash, which may have neighbours


def pair(rng: random.Random, bits: int, agree: bool) -> tuple[int, int, bytes, bytes]:
    a = 0xA5A5_5A5A_F0F0_0F0F
    coefficients = [rng.randrange(256) for _ in range(SIGNATURE_LENGTH)]
    coefficients[FLAT] = [0] * NEIGHBOUR_FLAT
    mark = bytes(coefficients)
    other = mark if agree else bytes((255 - x) for x in mark)  # the negation: cosine about -1
    return a, usable_flip(rng, a, bits), mark, other


def test_match_at_a_distance_links_by_the_signatures() -> None:
    rng = random.Random(4)
    a, b, mark, same = pair(rng, 10, agree=True)
    assert match(a, (), b, (), distance=10, signatures=(mark, same)) == (10, "none")
    own = np.frombuffer(mark, np.int8).astype(np.float64)
    other = np.random.default_rng(4).integers(-127, 128, SIGNATURE_LENGTH).astype(np.float64)
    near = np.clip(np.rint(0.55 * own + 0.25 * other), -127, 127).astype(np.int8).tobytes()
    cosine = signature_cosine(mark, near)
    assert cosine is not None and SIGNATURE_KEEP < cosine < NEIGHBOUR_KEEP  # agreeing, not neighbours
    assert match(a, (), b, (), distance=10, signatures=(mark, near)) == (10, "none")
    assert match(a, (), b, (), distance=9, signatures=(mark, near)) == (NO_MATCH, "none")
    # Signatures that are neighbours (here the same) link beyond the distance, at the pHash distance; not when the
    # pictures' pHashes are not fragile (fewer than NEIGHBOUR_FLAT coefficients at the median).
    assert match(a, (), b, (), distance=9, signatures=(mark, same)) == (10, "none")
    firm = bytes([*mark[:20], 9, *mark[21:]])
    assert match(a, (), b, (), distance=9, signatures=(firm, firm)) == (NO_MATCH, "none")
    a, b, mark, opposite = pair(rng, 10, agree=False)
    assert match(a, (), b, ()) == (10, "none")  # no distance: the least distance, as before
    assert match(a, (), b, (), distance=10, signatures=(mark, opposite)) == (NO_MATCH, "none")
    assert match(a, (), b, (), distance=10, signatures=(mark, b"")) == (10, "none")
    # A mirrored copy links through its alternate whatever the plain pair's signatures say.
    mirrored = usable_flip(rng, b, 10 - ALTERNATE_PENALTY)
    assert match(a, (mirrored,), b, (), distance=10, signatures=(mark, opposite)) == (10, "mirror")


def signed_set(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """with_alternates' hashes and alternates, plus pairs planted 9 to 12 bits apart, and signatures: each image
    a random one, a planted pair's second near its first's (cosine from about 0.7 to 1) or not, a tenth none; the
    planted pairs of every other six both fragile (NEIGHBOUR_FLAT coefficients at the median), of some of the rest
    the first only."""
    rng = random.Random(seed)
    hashes, owners, values = with_alternates(seed, n, 7)
    marks = np.random.default_rng(seed).integers(-127, 128, size=(n, SIGNATURE_LENGTH)).astype(np.int8)
    for first in range(0, n - 1, 6):
        second = first + 1
        hashes[second] = usable_flip(rng, int(hashes[first]), rng.choice([9, 10, 11, 12]))
        noise = marks[second].astype(np.float64) * rng.uniform(0.0, 1.2)  # its own random draw, scaled
        marks[second] = np.clip(marks[first] + noise, -127, 127).astype(np.int8)
        if first % 12 == 0:
            marks[first, FLAT] = marks[second, FLAT] = 0
        elif first % 12 == 6 and rng.random() < 0.5:
            marks[first, FLAT] = 0
    signed = np.array([rng.random() > 0.1 for _ in range(n)])
    marks[~signed] = 0
    return hashes, owners, values, marks, signed


def reference_signed(hashes: np.ndarray, owners: np.ndarray, values: np.ndarray, marks: np.ndarray,
                     signed: np.ndarray, distance: int) -> set[tuple[int, int]]:  # fmt: skip
    """match() at the distance on every pair: the rule as the api and the registry's callers apply it."""
    alternates: list[list[int]] = [[] for _ in hashes]
    for owner, value in zip(owners.tolist(), values.tolist(), strict=True):
        alternates[owner].append(value)
    mark = [marks[i].tobytes() if signed[i] else b"" for i in range(len(hashes))]
    found = set()
    for i in range(len(hashes)):
        for j in range(i + 1, len(hashes)):
            bits, _ = match(
                int(hashes[i]), tuple(alternates[i]), int(hashes[j]), tuple(alternates[j]),
                distance=distance, signatures=(mark[i], mark[j]),
            )  # fmt: skip
            if bits < NO_MATCH:
                found.add((i, j))
    return found


@pytest.mark.parametrize("method", [*METHODS, pytest.param("brute", id="brute")])
def test_the_regroup_links_exactly_the_pairs_match_links(method: variants.Method) -> None:
    hashes, owners, values, marks, signed = signed_set(21, 360)
    expected = reference_signed(hashes, owners, values, marks, signed, 10)
    unsigned = {tuple(p) for p in variants.variant_pairs(hashes, 10, method, alternates=(owners, values)).tolist()}
    # The signatures take chance pairs away, and add neighbours beyond the distance (planted pairs at 11-12 bits).
    assert unsigned - expected and expected - unsigned
    found = variants.variant_pairs(hashes, 10, method, alternates=(owners, values), signatures=(marks, signed))
    assert {tuple(p) for p in found.tolist()} == expected and len(found) == len(expected)


@pytest.mark.parametrize("method", [*METHODS, pytest.param("brute", id="brute")])
def test_a_refused_plain_pair_still_links_through_an_alternate_near_its_own_hash(method: variants.Method) -> None:
    # The cross search leaves out an alternate within ALTERNATE_PENALTY bits of its own image's hash (the plain
    # search has whatever it finds): when the signatures refuse that plain pair, the alternate must still link it.
    rng = random.Random(8)
    a, b, mark, opposite = pair(rng, 10, agree=False)
    differing = [bit for bit in range(64) if (a ^ b) >> bit & 1]
    mirrored = a
    for bit in differing[:ALTERNATE_PENALTY]:
        mirrored ^= 1 << bit  # 4 bits from its own hash, 6 from b's
    hashes = np.array([a, b], dtype=np.uint64)
    marks = np.stack([np.frombuffer(mark, np.int8), np.frombuffer(opposite, np.int8)])
    signed = np.array([True, True])
    alternates = (np.array([0], dtype=np.int64), np.array([mirrored], dtype=np.uint64))
    assert variants.variant_pairs(hashes, 10, method, signatures=(marks, signed)).size == 0  # refused
    found = variants.variant_pairs(hashes, 10, method, alternates=alternates, signatures=(marks, signed))
    assert found.tolist() == [[0, 1]]
    assert match(a, (mirrored,), b, (), distance=10, signatures=(mark, opposite))[0] == 10
