"""Radial-star benchmark: how Paktum reads the number of points of the stars that are rings at 32x32.

openclipart-png ships some 1,300 generated stars (shapes/stars/star_NNptKKstep.png, 100x100), whose names say
how many points each has. At 32x32 most of them are rings, alike to any hash, so Paktum matches a radial picture
by its number of points, read beyond the 32x32 (paktum_common.dct_hash.angular_reading), and its profile. This
bench takes the radial ones outside bench/variants.py's sample (a held-out set for the rule's thresholds), makes
the variants bench/variants.py makes of each, hashes every file as the hasher does, and prints:

- per kind, how many files have their number of points read right and how many wrongly, how many link to their
  star's original by the live rule (paktum_common.phash.match), and beside that how many plain pHash links
  (within 10 bits);
- the false pairs: pairs of distinct stars that any two of their files link, by their radial and band hashes
  (files whose number of points is read; bucketed by pattern, exact) and by plain pHash.

    make bench-radial                   # or: .venv/bin/python bench/radial.py [--limit N]
"""

from __future__ import annotations

import argparse
import collections
import io
import re
import warnings
from pathlib import Path

import numpy as np
from hasher import HERE
from PIL import Image
from variants import KINDS, PHASH_DISTANCE, flatten, paktum, sample_pictures, variants_of

from paktum_common.dct_hash import BAND_PATTERNS, ORDER_PATTERNS, RADIAL_CORRELATION, PictureHashes, turn_correlation
from paktum_common.phash import SYMMETRIC_DISTANCE, match
from paktum_hasher.phash import phash_dct

STARS = "openclipart-png/usr/share/openclipart/png/shapes/stars"
NAMED = re.compile(r"star_(\d+)pt\d+step\.png$")
ORDER_OF = {pattern: order for order, pattern in enumerate(ORDER_PATTERNS)}
PATTERNS = {*ORDER_PATTERNS, *BAND_PATTERNS}


def read_order(hashes: PictureHashes) -> int:
    """The number of points a file's radial hash stands for; 0 when it has none (not read, or not radial)."""
    return ORDER_OF.get(hashes.symmetric_hashes[0] >> 32, 0) if hashes.symmetric else 0


def radial(data: bytes) -> bool:
    image = Image.open(io.BytesIO(data))
    return turn_correlation(phash_dct(flatten(image, (255, 255, 255)).convert("L"))) >= RADIAL_CORRELATION


def plain_pairs(stars: np.ndarray, plain: np.ndarray) -> int:
    """Pairs of distinct stars any two of whose files are within PHASH_DISTANCE by plain pHash."""
    linked: set[tuple[int, int]] = set()
    for start in range(0, len(plain), 2048):
        block = np.bitwise_count(plain[start : start + 2048, None] ^ plain[None, :]) <= PHASH_DISTANCE
        rows, columns = np.nonzero(block)
        a, b = stars[rows + start], stars[columns]
        linked |= {(int(x), int(y)) for x, y in zip(a, b, strict=True) if x < y}
    return len(linked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=HERE / ".corpus", help="where packages are unpacked")
    parser.add_argument("--limit", type=int, default=0, help="at most this many stars (0: all)")
    args = parser.parse_args()
    sample = {s.path for s in sample_pictures(args.corpus)}
    paths = sorted(p for p in (args.corpus / STARS).glob("star_*pt*step.png") if NAMED.search(p.name))
    paths = [p for p in paths if str(p.relative_to(args.corpus)) not in sample]
    stars: list[int] = []  # per file: which star
    kinds: list[str] = []
    hashes: list[PictureHashes] = []
    points: list[int] = []
    for path in paths:
        if args.limit and len(points) >= args.limit:
            break
        data = path.read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if not radial(data):
                continue
            data, made, _, blank = variants_of(data)
        points.append(int(NAMED.search(path.name).group(1)))  # type: ignore[union-attr]
        for kind, file in [("original", data), *((k, v) for k, v in made.items() if k not in blank)]:
            stars.append(len(points) - 1)
            kinds.append(kind)
            hashes.append(paktum(file))
    orders = [read_order(h) for h in hashes]
    print(f"{len(points)} radial stars outside bench/variants.py's sample, {len(hashes)} files\n")
    print(f"{'kind':<11} {'files':>5} | {'read right':>10} {'wrongly':>7} | {'linked':>6} {'plain pHash':>11}")
    original = {s: i for i, (s, k) in enumerate(zip(stars, kinds, strict=True)) if k == "original"}
    for kind in ("original", *KINDS):
        members = [i for i, k in enumerate(kinds) if k == kind]
        if not members:
            continue
        right = sum(orders[i] == points[stars[i]] for i in members)
        wrong = sum(orders[i] not in (0, points[stars[i]]) for i in members)
        linked = plain = "-"
        if kind != "original":
            pairs = [(hashes[original[stars[i]]], hashes[i]) for i in members]
            linked = str(sum(match(a.plain, a.alternates, b.plain, b.alternates, a.symmetry, b.symmetry)[0]
                             <= PHASH_DISTANCE for a, b in pairs))  # fmt: skip
            plain = str(sum((a.plain ^ b.plain).bit_count() <= PHASH_DISTANCE for a, b in pairs))
        print(f"{kind:<11} {len(members):>5} | {right:>10} {wrong:>7} | {linked:>6} {plain:>11}")
    # Two radial or band hashes within SYMMETRIC_DISTANCE have one pattern (patterns are 8 bits apart or more):
    # bucketed by pattern, the pairs are exact.
    by_pattern: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
    for i, h in enumerate(hashes):
        for value in h.symmetric_hashes if h.symmetric else ():
            if value >> 32 in PATTERNS:
                by_pattern[value >> 32].append((stars[i], value & 0xFFFFFFFF))
    false: set[tuple[int, int]] = set()
    for members in by_pattern.values():
        low = np.array([value for _, value in members], dtype=np.uint64)
        close = np.bitwise_count(low[:, None] ^ low[None, :]) <= SYMMETRIC_DISTANCE
        for x, y in zip(*np.nonzero(close), strict=True):
            a, b = members[x][0], members[y][0]
            if a < b:
                false.add((a, b))
    total = len(points) * (len(points) - 1) // 2
    plain_false = plain_pairs(np.array(stars), np.array([h.plain for h in hashes], dtype=np.uint64))
    print(f"\nfalse pairs of stars (of {total:,}): radial and band hashes {len(false):,}, plain pHash {plain_false:,}")


if __name__ == "__main__":
    main()
