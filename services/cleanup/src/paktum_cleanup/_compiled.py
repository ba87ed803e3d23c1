"""The compiled kernels of variant grouping (numba): the chunk-table pair searches (within one set, between
two) and union-find."""

from __future__ import annotations

from typing import Any, cast

import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic

CHUNK_BITS = 16
CHUNK_VALUES = 1 << CHUNK_BITS
# The 4 chunks of 16 bits, for the kernels that take chunks of any width.
SIXTEEN_OFFSETS = np.array([0, 16, 32, 48], dtype=np.int64)
SIXTEEN_WIDTHS = np.array([16, 16, 16, 16], dtype=np.int64)


@intrinsic
def _ctpop(typingctx: Any, value: Any) -> Any:
    # numba exposes no popcount; LLVM's ctpop becomes one POPCNT instruction on the host CPU.
    signature = types.uint64(types.uint64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return signature, codegen


# Called only from compiled code, where numba resolves the intrinsic; to mypy it is any callable.
_popcount: Any = cast(Any, _ctpop)


@numba.njit(cache=True, nogil=True)
def _grow(out: np.ndarray) -> np.ndarray:
    bigger = np.empty((out.shape[0] * 2, 2), dtype=np.int64)
    bigger[: out.shape[0]] = out
    return bigger


@numba.njit(cache=True, nogil=True)
def _scan_row(
    a: np.uint64,
    p: int,
    others: np.ndarray,
    first: int,
    end: int,
    chunk: int,
    limit: np.uint64,
    radii: np.ndarray,
    offsets: np.ndarray,
    widths: np.ndarray,
    out: np.ndarray,
    count: int,
) -> tuple[np.ndarray, int]:
    """Record (p, q) for every q in first..end whose hash is within `limit` of `a`, first close on `chunk`."""
    # Almost no candidate is a pair: a branch-free counting pass (which LLVM vectorizes)
    # rules most rows out before the pass that records pairs.
    hits = np.int64(0)
    for q in range(first, end):
        hits += np.int64(_popcount(a ^ others[q]) <= limit)
    if hits == 0:
        return out, count
    for q in range(first, end):
        xor = a ^ others[q]
        if _popcount(xor) <= limit and _first_close_wide(xor, chunk, radii, offsets, widths):
            if count == out.shape[0]:
                out = _grow(out)
            out[count, 0] = p
            out[count, 1] = q
            count += 1
    return out, count


@numba.njit(cache=True, nogil=True)
def chunk_pairs(
    sorted_hashes: np.ndarray, starts: np.ndarray, masks: np.ndarray, chunk: int, distance: int, radii: np.ndarray
) -> np.ndarray:
    """Positions (p, q) in the chunk-sorted order of every pair within `distance` first close on `chunk`."""
    return _bucket_pairs(sorted_hashes, starts, sorted_hashes, starts, masks, chunk, distance, radii, True)


@numba.njit(cache=True, nogil=True)
def cross_chunk_pairs(
    sorted_targets: np.ndarray,
    target_starts: np.ndarray,
    sorted_queries: np.ndarray,
    query_starts: np.ndarray,
    masks: np.ndarray,
    chunk: int,
    distance: int,
    radii: np.ndarray,
) -> np.ndarray:
    """Positions (t, q) in the two chunk-sorted orders of every target-query pair within `distance` first
    close on `chunk`: chunk_pairs between two sets (alternate pHashes against plain ones)."""
    return _bucket_pairs(
        sorted_targets, target_starts, sorted_queries, query_starts, masks, chunk, distance, radii, False
    )


@numba.njit(cache=True, nogil=True)
def _bucket_pairs(
    left: np.ndarray,
    left_starts: np.ndarray,
    right: np.ndarray,
    right_starts: np.ndarray,
    masks: np.ndarray,
    chunk: int,
    distance: int,
    radii: np.ndarray,
    same: bool,
) -> np.ndarray:
    # `same`: left and right are one set, so each pair of buckets is visited once (from the lower key to the
    # higher) and within one bucket each position pairs with the ones after it.
    limit = np.uint64(distance)
    out = np.empty((1024, 2), dtype=np.int64)
    count = 0
    for key in range(CHUNK_VALUES):
        s1 = left_starts[key]
        e1 = left_starts[key + 1]
        if s1 == e1:
            continue
        for mask in masks:
            partner = key ^ mask
            if same and partner < key:
                continue
            s2 = right_starts[partner]
            e2 = right_starts[partner + 1]
            if s2 == e2:
                continue
            for p in range(s1, e1):
                first = p + 1 if same and mask == 0 else s2
                out, count = _scan_row(
                    left[p], p, right, first, e2, chunk, limit, radii, SIXTEEN_OFFSETS, SIXTEEN_WIDTHS, out, count
                )
    return out[:count].copy()


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


@numba.njit(cache=True, nogil=True)
def _first_close_wide(xor: np.uint64, chunk: int, radii: np.ndarray, offsets: np.ndarray, widths: np.ndarray) -> bool:
    # _first_close_chunk for chunks of any widths.
    for earlier in range(chunk):
        part = (xor >> np.uint64(offsets[earlier])) & ((np.uint64(1) << np.uint64(widths[earlier])) - np.uint64(1))
        if radii[earlier] >= 0 and _popcount(part) <= np.uint64(radii[earlier]):
            return False
    return True


@numba.njit(cache=True, nogil=True)
def wide_cross_pairs(
    sorted_targets: np.ndarray,
    target_keys: np.ndarray,
    target_runs: np.ndarray,
    sorted_queries: np.ndarray,
    query_starts: np.ndarray,
    masks: np.ndarray,
    layout: np.ndarray,  # one row per chunk: bit offset, width, search radius
    chunk: int,
    distance: int,
) -> np.ndarray:
    """cross_chunk_pairs over wide chunks (about 21 bits): the targets' distinct chunk values (`target_keys`,
    their runs in `target_runs`), each probed with every mask. The mask is the outer loop, so the probes walk
    `query_starts` nearly in order (x ^ mask for ascending x), which the memory prefetcher follows."""
    offsets = layout[:, 0].copy()
    widths = layout[:, 1].copy()
    radii = layout[:, 2].copy()
    limit = np.uint64(distance)
    out = np.empty((1024, 2), dtype=np.int64)
    count = 0
    for mask in masks:
        for index in range(target_keys.size):
            partner = target_keys[index] ^ mask
            s2 = query_starts[partner]
            e2 = query_starts[partner + 1]
            if s2 == e2:
                continue
            for p in range(target_runs[index], target_runs[index + 1]):
                out, count = _scan_row(
                    sorted_targets[p], p, sorted_queries, s2, e2, chunk, limit, radii, offsets, widths, out, count
                )
    return out[:count].copy()
