"""The compiled kernels of variant grouping (numba): ordering hashes by a chunk, the chunk-table pair search
(within one set or between two) and union-find."""

from __future__ import annotations

from typing import Any, cast

import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic

CHUNKS = 4
CHUNK_BITS = 16
CHUNK_VALUES = 1 << CHUNK_BITS
CHUNK_MASK = np.uint64(CHUNK_VALUES - 1)


@intrinsic
def _xor_ctpop(typingctx: Any, a: Any, b: Any) -> Any:
    # numba exposes no popcount; LLVM's ctpop becomes one POPCNT instruction, or a vector one in a loop. The
    # XOR and the count keep the first argument's width (numba would widen a uint32 XOR to 64 bits): 8 uint32
    # words to a 256-bit register where 4 uint64 hashes fit.
    if a not in types.unsigned_domain or b not in types.unsigned_domain:
        return None
    signature = a(a, a)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.ctpop(builder.xor(args[0], args[1]))

    return signature, codegen


# Called only from compiled code, where numba resolves the intrinsic; to mypy it is any callable.
_distance: Any = cast(Any, _xor_ctpop)


@numba.njit(cache=True, nogil=True)
def _grow(out: np.ndarray) -> np.ndarray:
    bigger = np.empty((out.shape[0] * 2, 2), dtype=np.int64)
    bigger[: out.shape[0]] = out
    return bigger


@numba.njit(cache=True, nogil=True)
def chunk_sorted(hashes: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The hashes ordered by one chunk's value (a counting sort, stable): their order, the sorted hashes,
    where each value's run starts, and each sorted hash's two following chunks as one 32-bit word (the
    filter chunk_join compares first)."""
    shift = np.uint64(CHUNK_BITS * chunk)
    low = np.uint64(CHUNK_BITS * ((chunk + 1) % CHUNKS))
    high = np.uint64(CHUNK_BITS * ((chunk + 2) % CHUNKS))
    starts = np.zeros(CHUNK_VALUES + 1, dtype=np.int64)
    for value in hashes:
        starts[((value >> shift) & CHUNK_MASK) + np.uint64(1)] += 1
    for key in range(CHUNK_VALUES):
        starts[key + 1] += starts[key]
    fill = starts[:-1].copy()
    order = np.empty(hashes.size, dtype=np.int64)
    ordered = np.empty(hashes.size, dtype=np.uint64)
    words = np.empty(hashes.size, dtype=np.uint32)
    for index in range(hashes.size):
        value = hashes[index]
        key = (value >> shift) & CHUNK_MASK
        position = fill[key]
        fill[key] += 1
        order[position] = index
        ordered[position] = value
        words[position] = np.uint32(((value >> low) & CHUNK_MASK) | (((value >> high) & CHUNK_MASK) << np.uint64(16)))
    return order, ordered, starts, words


@numba.njit(cache=True, nogil=True)
def chunk_join(
    held: np.ndarray,
    held_starts: np.ndarray,
    held_words: np.ndarray,
    streamed: np.ndarray,
    streamed_starts: np.ndarray,
    streamed_words: np.ndarray,
    masks: np.ndarray,
    chunk: int,
    distance: int,
    radii: np.ndarray,
    same: bool,
) -> np.ndarray:
    """Positions (h, s) in the two chunk-sorted orders (chunk_sorted) of every pair within `distance` that is
    first close on `chunk`: the held hash's chunk value and the streamed one's differ by one of `masks`, and on
    no earlier chunk are they within that chunk's radius. `same`: both sides are one set, and each pair is
    reported once (h > s).

    The held side's run of one chunk value stays in the L1 cache while the streamed runs of every value within
    the radius pass by it (hold the larger side's runs). Almost no candidate is a pair, so each streamed hash is
    first compared on 32 other bits alone, 8 at a time: their distance can be at most `distance` less the bits
    the chunk's mask sets. Only a row with such a candidate is compared on all 64 bits."""
    limit = np.uint64(distance)
    out = np.empty((1024, 2), dtype=np.int64)
    count = 0
    for key in range(CHUNK_VALUES):
        held_start = held_starts[key]
        if held_start == held_starts[key + 1]:
            continue
        # Unsigned loop bounds: numba then drops its negative-index check, and LLVM vectorizes the loops.
        held_end = np.uint64(held_starts[key + 1])
        for mask in masks:
            partner = key ^ mask
            if same and partner < key:
                continue
            rest = np.uint32(distance - np.int64(_distance(np.uint64(mask), np.uint64(0))))
            for s in range(streamed_starts[partner], streamed_starts[partner + 1]):
                first = np.uint64(s + 1 if same and mask == 0 else held_start)
                if _least_distance(streamed_words[s], held_words, first, held_end) > rest:
                    continue
                value = streamed[s]
                if _least_distance(value, held, first, held_end) > limit:
                    continue
                for h in range(first, held_end):
                    xor = value ^ held[h]
                    if _distance(xor, np.uint64(0)) <= limit and _first_close(xor, chunk, radii):
                        if count == out.shape[0]:
                            out = _grow(out)
                        out[count, 0] = h
                        out[count, 1] = s
                        count += 1
    return out[:count].copy()


@numba.njit(cache=True, nogil=True)
def _least_distance(value: Any, others: np.ndarray, first: np.uint64, end: np.uint64) -> Any:
    """The least Hamming distance from `value` to others[first:end], in the width of `value`'s type (that width
    when the range is empty)."""
    least = _distance(value, ~value)
    for index in range(first, end):
        least = min(least, _distance(value, others[index]))
    return least


@numba.njit(cache=True, nogil=True)
def _first_close(xor: np.uint64, chunk: int, radii: np.ndarray) -> bool:
    """True when no chunk before `chunk` is within its radius: the pair is reported from `chunk` only."""
    for earlier in range(chunk):
        part = (xor >> np.uint64(CHUNK_BITS * earlier)) & CHUNK_MASK
        if radii[earlier] >= 0 and _distance(part, np.uint64(0)) <= np.uint64(radii[earlier]):
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _find(parent: np.ndarray, node: int) -> int:
    while parent[node] != node:
        parent[node] = parent[parent[node]]  # path halving keeps the trees shallow
        node = parent[node]
    return node


@numba.njit(cache=True, nogil=True)
def union_find(n: int, pairs: np.ndarray) -> np.ndarray:
    """For each index the smallest index of its connected component."""
    parent = np.arange(n, dtype=np.int64)
    for k in range(pairs.shape[0]):
        a = _find(parent, pairs[k, 0])
        b = _find(parent, pairs[k, 1])
        if a < b:
            parent[b] = a
        elif b < a:
            parent[a] = b
    for node in range(n):
        parent[node] = _find(parent, node)
    return parent
