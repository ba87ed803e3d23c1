"""Variant grouping benchmark: our exact grouping against brute force measured in the same run.

Generates N pHashes (uniform random filler, planted clusters at 1-10 bits from a centre, decoys at
11-12 bits) and prints, for each N: time and peak memory of the grouping, numpy brute force time
(measured up to --brute-max, extrapolated quadratically beyond), pairs found against brute force,
and a pure-Python double loop measured on a small N and extrapolated.

    make bench-groups            # N = 10k, 100k, 1M: plain, then with 7 alternates, symmetric hashes, signatures, hues
    .venv/bin/python bench/groups.py --alternates 7 --symmetry --signatures --hues --sizes 10000 100000 1000000
    .venv/bin/python bench/groups.py --sizes 10000 100000 1000000 --numpy-path
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import time
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from paktum_cleanup import variants
from paktum_common.hues import HUES_LENGTH
from paktum_common.phash import (
    NEIGHBOUR_FLAT,
    SIGNATURE_LENGTH,
    SIGNATURE_MARGIN,
    SYMMETRIC_DISTANCE,
    alternate_distance,
)

T = TypeVar("T")
DISTANCE = 10
FRAGILE_SHARE = 0.3


def make_hashes(n: int, seed: int = 0) -> np.ndarray:
    """Uniform filler plus clusters (a fifth of N) at 1-10 bits from their centre and decoys at 11-12."""
    rng = np.random.default_rng(seed)
    clustered = n // 5
    filler = rng.integers(0, np.iinfo(np.uint64).max, n - clustered, dtype=np.uint64, endpoint=True)
    centres = rng.integers(0, np.iinfo(np.uint64).max, max(1, clustered // 5), dtype=np.uint64, endpoint=True)
    members = []
    for index in range(clustered):
        centre = centres[index % centres.size]
        bits = int(rng.integers(1, 11)) if index % 10 else int(rng.integers(11, 13))  # every tenth a decoy
        mask = 0
        for bit in rng.choice(64, size=bits, replace=False):
            mask |= 1 << int(bit)
        members.append(centre ^ np.uint64(mask))
    hashes = np.concatenate([filler, centres, np.array(members, dtype=np.uint64)])[:n]
    rng.shuffle(hashes)
    return hashes


def make_alternates(hashes: np.ndarray, per_image: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`per_image` alternates for each hash (as the hasher's mirrored and rotated pHashes): uniform, but one in
    fifty planted 1-10 bits from another image's hash (a mirrored copy of it) and one in a hundred near its own."""
    rng = np.random.default_rng(seed + 1)
    n = hashes.size
    owners = np.repeat(np.arange(n, dtype=np.int64), per_image)
    values = rng.integers(0, np.iinfo(np.uint64).max, owners.size, dtype=np.uint64, endpoint=True)
    roll = rng.random(owners.size)
    planted = np.flatnonzero(roll < 0.03)
    near_other = roll[planted] < 0.02
    sources = np.where(near_other, rng.integers(0, n, planted.size), owners[planted])
    masks = np.zeros(planted.size, dtype=np.uint64)
    for index in range(planted.size):
        for bit in rng.choice(64, size=int(rng.integers(1, 11)), replace=False):
            masks[index] |= np.uint64(1) << np.uint64(bit)
    values[planted] = hashes[sources] ^ masks
    return owners, values


SYMMETRIC_SHARE = 0.05  # pictures that are symmetric (stars, emblems): on booru sites far fewer
SECOND_SHARE = 0.1  # pictures with transparency: a second symmetric hash (flattened on black)


def balanced_hashes(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` uniform 64-bit hashes with 32 bits set, as every usable symmetric hash has."""
    found: list[np.ndarray] = []
    total = 0
    while total < count:
        draw = rng.integers(0, np.iinfo(np.uint64).max, 12 * (count - total) + 64, dtype=np.uint64, endpoint=True)
        keep = draw[np.bitwise_count(draw) == 32]
        found.append(keep)
        total += keep.size
    return np.concatenate(found)[:count]


def make_symmetry(n: int, seed: int = 0) -> variants.SymmetryRows:
    """Every image's symmetric hashes (paktum_common.phash.Symmetry) as the cleanup's rows: uniform balanced
    hashes, a fifth of them in clusters 0-8 bits from a centre (bits swapped, so still balanced), SECOND_SHARE
    of the images with a second one, SYMMETRIC_SHARE of them symmetric."""
    rng = np.random.default_rng(seed + 2)
    values = balanced_hashes(rng, n)
    clustered = rng.choice(n, n // 5, replace=False)
    centres = balanced_hashes(rng, max(1, clustered.size // 5))
    for index, row in enumerate(clustered):
        centre = int(centres[index % centres.size])
        ones = [b for b in range(64) if centre >> b & 1]
        zeros = [b for b in range(64) if not centre >> b & 1]
        swaps = int(rng.integers(0, 5))
        for bit in [*rng.choice(ones, swaps, replace=False), *rng.choice(zeros, swaps, replace=False)]:
            centre ^= 1 << int(bit)
        values[row] = np.uint64(centre)
    seconds = np.flatnonzero(rng.random(n) < SECOND_SHARE)
    owners = np.concatenate([np.arange(n, dtype=np.int64), seconds])
    extra = values[rng.integers(0, n, seconds.size)]  # near some other picture as seen on black
    symmetric = rng.random(n) < SYMMETRIC_SHARE
    return symmetric, owners, np.concatenate([values, extra])


def make_signatures(hashes: np.ndarray, seed: int = 0) -> variants.Signatures:
    """Every image's signature (paktum_common.dct_hash.signature), each drawn at random: every plain pair in the
    distance's last SIGNATURE_MARGIN bits is asked and refused, the most work the rule can make (each refused one is
    then looked for through the alternates too). FRAGILE_SHARE of them have NEIGHBOUR_FLAT coefficients at the
    median (paktum_common.phash.fragile_rows), as 24-36% of the variant bench's pictures do: their SimHashes are
    joined in search of signature neighbours."""
    rng = np.random.default_rng(seed + 3)
    marks = rng.integers(-127, 128, size=(hashes.size, SIGNATURE_LENGTH), dtype=np.int8)
    marks[np.ix_(rng.random(hashes.size) < FRAGILE_SHARE, np.arange(NEIGHBOUR_FLAT))] = 0
    return marks, np.ones(hashes.size, bool)


def make_hues(n: int, seed: int = 0) -> np.ndarray:
    """Every image's hue mark (paktum_common.hues), each drawn at random: a mean chroma from 0 to 255 (a few below
    the floor, with no hue to go by) and hue shares from a flat Dirichlet draw, so that most pairs found are
    measured and many refused."""
    rng = np.random.default_rng(seed + 4)
    rows = np.zeros((n, HUES_LENGTH), dtype=np.uint8)
    rows[:, 0] = rng.integers(0, 256, n)
    rows[:, 1:] = np.rint(rng.dirichlet(np.ones(HUES_LENGTH - 1), n) * 255)
    return rows


def timed(func: Callable[[], T]) -> tuple[T, float]:
    gc.collect()
    started = time.perf_counter()
    result = func()
    return result, time.perf_counter() - started


def peak_memory(func: Callable[[], object]) -> float:
    """Peak of Python and numpy allocations during `func`, in MiB (a second run, traced)."""
    gc.collect()
    tracemalloc.start()
    func()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def pure_python_seconds_per_pair(n: int = 3000) -> float:
    hashes = [int(h) for h in make_hashes(n, seed=9)]
    started = time.perf_counter()
    found = 0
    for i in range(n):
        a = hashes[i]
        for j in range(i + 1, n):
            if (a ^ hashes[j]).bit_count() <= DISTANCE:
                found += 1
    return (time.perf_counter() - started) / (n * (n - 1) / 2)


def human(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--brute-max", type=int, default=100_000, help="largest N brute force is measured at")
    parser.add_argument("--numpy-path", action="store_true", help="also time the numpy fallback at every N")
    parser.add_argument(
        "--alternates", type=int, default=0,
        help="alternates per image (the hasher makes 7, 15 for a transparent picture): dihedral and alpha matching",
    )  # fmt: skip
    parser.add_argument(
        "--signatures", action="store_true",
        help=f"a signature for every image: plain pairs in the distance's last {SIGNATURE_MARGIN} bits decided by "
        "them (paktum_common.phash.plain_links)",
    )  # fmt: skip
    parser.add_argument(
        "--hues", action="store_true",
        help="a hue mark for every image: no pair of two whose hues disagree (paktum_common.hues)",
    )  # fmt: skip
    parser.add_argument(
        "--symmetry", action="store_true",
        help=f"symmetric hashes for every image ({SYMMETRIC_SHARE:.0%} symmetric, {SECOND_SHARE:.0%} with two): "
        "a pair with a symmetric side matched by them alone",
    )  # fmt: skip
    args = parser.parse_args()

    method = variants.available_method()
    print(f"python {platform.python_version()}, numpy {np.__version__}, grouping method: {method}, distance {DISTANCE}")
    warm = make_hashes(2000, seed=1)
    _, compile_seconds = timed(lambda: variants.group_variants(warm, DISTANCE, method))
    print(f"warm-up (numba compile or cache load): {human(compile_seconds)}")
    per_pair = pure_python_seconds_per_pair()
    print(f"pure-Python double loop: {per_pair * 1e9:.0f} ns per pair (measured at N=3000)\n")

    brute_per_pair: float | None = None
    header = f"{'N':>9} | {'ours':>9} | {'peak MiB':>8} | {'groups':>7} | {'pairs':>8} | {'brute force':>18} | "
    header += f"{'speed-up':>8} | {'pairs = brute':>13} | {'pure Python (est.)':>18}"
    if args.numpy_path:
        header += f" | {'numpy path':>10}"
    print(header)
    print("-" * len(header))
    if args.alternates:
        print(
            f"with {args.alternates} alternates per image: each alternate against every plain hash, within "
            f"{alternate_distance(DISTANCE)} bits (paktum_common.phash.alternate_distance)\n"
        )
    if args.signatures:
        print(
            f"with signatures: plain pairs beyond {DISTANCE - SIGNATURE_MARGIN} bits decided by their signatures "
            "(random here: every one refused, then looked for through the alternates)\n"
        )
    if args.hues:
        print("with hue marks: random, every pair found measured by them (paktum_common.hues.hue_agreement)\n")
    if args.symmetry:
        print(
            f"with symmetric hashes: {SYMMETRIC_SHARE:.0%} of the images symmetric, matched by them alone within "
            f"{SYMMETRIC_DISTANCE} bits (paktum_common.phash.match)\n"
        )
    for n in args.sizes:
        hashes = make_hashes(n)
        alts = make_alternates(hashes, args.alternates) if args.alternates else None
        sym = make_symmetry(n) if args.symmetry else None
        marks = make_signatures(hashes) if args.signatures else None
        hued = make_hues(n) if args.hues else None
        grouping, ours = timed(
            lambda h=hashes, a=alts, y=sym, m=marks, u=hued: variants.group_variants(
                h, DISTANCE, method, None, a, y, m, u
            )
        )
        peak = peak_memory(
            lambda h=hashes, a=alts, y=sym, m=marks, u=hued: variants.group_variants(
                h, DISTANCE, method, None, a, y, m, u
            )
        )
        total_pairs = n * (n - 1) / 2
        if n <= args.brute_max:
            if alts is None and sym is None and marks is None and hued is None:
                brute_pairs, brute = timed(lambda h=hashes: variants.pairs_brute_force(h, DISTANCE))
                # Brute force does not skip degenerate hashes; compare on the same footing.
                usable = ~variants.degenerate_mask(hashes)
                brute_pairs = variants._sorted_pairs(brute_pairs[usable[brute_pairs[:, 0]] & usable[brute_pairs[:, 1]]])
            else:
                brute_pairs, brute = timed(
                    lambda h=hashes, a=alts, y=sym, m=marks, u=hued: variants.variant_pairs(
                        h, DISTANCE, "brute", None, a, y, m, u
                    )
                )
            same = "yes" if np.array_equal(brute_pairs, grouping.pairs) else "NO"
            brute_per_pair = brute / total_pairs
            brute_text = f"{human(brute)} measured"
        else:
            brute = (brute_per_pair or 0) * total_pairs
            same = "(not run)"
            brute_text = f"{human(brute)} estimated" if brute_per_pair else "not measured"
        speed_up = f"{brute / ours:>7.0f}x" if brute else f"{'-':>8}"
        row = (
            f"{n:>9} | {human(ours):>9} | {peak:>8.0f} | {len(grouping.groups()):>7} | {len(grouping.pairs):>8} | "
            f"{brute_text:>18} | {speed_up} | {same:>13} | {human(per_pair * total_pairs):>18}"
        )
        if args.numpy_path:
            numpy_grouping, numpy_seconds = timed(
                lambda h=hashes, a=alts, y=sym, m=marks, u=hued: variants.group_variants(
                    h, DISTANCE, "numpy", None, a, y, m, u
                )
            )
            assert np.array_equal(numpy_grouping.pairs, grouping.pairs), "numpy path disagrees"
            row += f" | {human(numpy_seconds):>10}"
        print(row, flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak resident memory: {rss:.0f} MiB; one core (the grouping is single-threaded)")


if __name__ == "__main__":
    main()
