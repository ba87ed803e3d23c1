"""Redis cost of the pHash registry: memory per image and registration speed, with and without symmetric hashes.

Starts an embedded Redis (the one `paktum up` runs), registers N generated images in batches as the hasher does
(`IMAGES.add`: pHash, 7 alternates; in the second run a Symmetry, 5% of them symmetric; in the third, 30% of them
transparent too, with 15 alternates, their on-black pHash in the other-background table; in the fourth, each
image's signature SimHash too, in its table), and prints Redis's used_memory per image and images registered per
second for each, beside the first as a ratio. Then times `near_any` lookups (one image's pHash, alternates,
symmetric hash and, in the fourth, SimHash per call, as ingest linking and search by image ask).

The SimHashes are those of generated signatures that lean as real ones do: random coefficients plus a common part
on the two coefficients a picture with its subject in the middle sets (DCT (0,2) and (2,0)), so that half the
SimHash bits are set 0.75 or 0.25 of the time. On the variant bench's pictures the bits lean 0.2-0.8 (the mean of
their unit signatures has norm 0.43, here 0.43 too); uniform bits would make each lookup read far fewer. Only the
fragile 30% have one (paktum_common.phash.fragile_rows); a lookup asks with a fragile picture's.

    .venv/bin/python bench/registry.py --images 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from redis.asyncio import Redis

from paktum_cli.embedded_redis import EmbeddedRedis
from paktum_common.phash import NEIGHBOUR_FLAT, SIGNATURE_LENGTH, Symmetry, fragile_rows, simhashes
from paktum_common.registry import IMAGES

BATCH = 2000
SYMMETRIC_SHARE = 0.05
TRANSPARENT_SHARE = 0.3
# The common part of the generated signatures (against 63 standard normal coefficients): the mean unit signature's
# norm is then about 0.43, as on the variant bench's pictures.
COMMON = 3.8
# Of the variant bench's pictures, 24-36% have a fragile pHash (paktum_common.phash.fragile_rows), and only they have
# a SimHash: here FRAGILE_SHARE of them, with NEIGHBOUR_FLAT coefficients (past the common part's) at the median.
FRAGILE_SHARE = 0.3
FLAT_COEFFICIENTS = list(range(20, 20 + NEIGHBOUR_FLAT))


def leaning_simhashes(count: int, seed: int) -> list[int | None]:
    """SimHashes of `count` generated signatures with a common part, FRAGILE_SHARE of them fragile (see the
    module's text); None for the others, as paktum_common.phash.simhash_of gives."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((count, SIGNATURE_LENGTH))
    rows[:, [1, 15]] += COMMON / np.sqrt(2)
    rows = np.clip(np.rint(rows / np.abs(rows).max(axis=1, keepdims=True) * 127), -127, 127).astype(np.int8)
    smooth = rng.random(count) < FRAGILE_SHARE
    rows[np.ix_(smooth, FLAT_COEFFICIENTS)] = 0
    fragile = fragile_rows(rows)
    return [int(code) if ok else None for code, ok in zip(simhashes(rows), fragile, strict=True)]


def balanced(rng: random.Random) -> int:
    return sum(1 << bit for bit in rng.sample(range(64), 32))


async def run(
    url: str, images: int, with_symmetry: bool, transparent: float, lookups: int, with_simhash: bool = False
) -> tuple[float, float, float, float]:
    """(used_memory bytes per image, images/s registered, near_any p50 ms, p99 ms)."""
    redis = Redis.from_url(url, decode_responses=True)
    rng = random.Random(1)
    base = int((await redis.info("memory"))["used_memory"])
    started = time.perf_counter()
    for start in range(0, images, BATCH):
        batch = {f"{i:032x}": rng.getrandbits(64) for i in range(start, min(start + BATCH, images))}
        alternates = {
            m: tuple(rng.getrandbits(64) for _ in range(15 if rng.random() < transparent else 7)) for m in batch
        }
        shapes = (
            {m: Symmetry(rng.random() < SYMMETRIC_SHARE, (balanced(rng),)) for m in batch} if with_symmetry else None
        )
        drawn = leaning_simhashes(len(batch), start) if with_simhash else []
        codes = {m: code for m, code in zip(batch, drawn, strict=False) if code is not None}
        await IMAGES.add(redis, batch, alternates, shapes, codes)
    rate = images / (time.perf_counter() - started)
    used = int((await redis.info("memory"))["used_memory"]) - base
    times = []
    for _ in range(lookups):
        query = (rng.getrandbits(64), *(rng.getrandbits(64) for _ in range(7)))
        shape = [Symmetry(rng.random() < SYMMETRIC_SHARE, (balanced(rng),))] if with_symmetry else []
        code = [next(c for c in leaning_simhashes(64, images + len(times)) if c is not None)] if with_simhash else []
        began = time.perf_counter()
        await IMAGES.near_any(redis, [query], 10, shape, code)
        times.append((time.perf_counter() - began) * 1000)
    await redis.aclose()
    cuts = statistics.quantiles(times, n=100)
    return used / images, rate, cuts[49], cuts[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200_000)
    parser.add_argument("--lookups", type=int, default=500)
    args = parser.parse_args()
    runs = {
        "pHash + alternates": (False, 0.0, False),
        "+ symmetric hashes": (True, 0.0, False),
        "+ 30% transparent": (True, 0.3, False),
        "+ SimHashes": (True, 0.3, True),
    }
    rows = {}
    for name, (with_symmetry, transparent, with_simhash) in runs.items():
        with tempfile.TemporaryDirectory() as tmp:
            server = EmbeddedRedis(Path(tmp)).start()
            try:
                rows[name] = asyncio.run(
                    run(server.url, args.images, with_symmetry, transparent, args.lookups, with_simhash)
                )
            finally:
                server.stop()
    print(f"{args.images} images, 7 alternates each (15 when transparent); embedded Redis; near_any at distance 10")
    print(f"{'registry':<24} | {'B/image':>8} | {'MiB':>7} | {'images/s':>9} | {'lookup p50':>10} | {'p99':>7}")
    for name, (per, rate, p50, p99) in rows.items():
        print(
            f"{name:<24} | {per:>8.0f} | {per * args.images / 2**20:>7.0f} | {rate:>9.0f} | {p50:>8.2f}ms | "
            f"{p99:>5.2f}ms"
        )
    plain, plain_rate, plain_p50, _ = rows["pHash + alternates"]
    for name in list(runs)[1:]:
        per, rate, p50, _ = rows[name]
        print(f"{name} against the first: memory {per / plain:.2f}x, registration {plain_rate / rate:.2f}x the time, "
              f"lookup p50 {p50 / plain_p50:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
