"""Exact variant grouping: every pair of pHashes within the distance, by multi-index hashing, then components.

The 64 bits split into 4 chunks of 16. Write d = 4r + a (0 <= a < 4): two hashes within distance d
differ in at most r bits on one of the first a + 1 chunks, or in at most r - 1 bits on one of the
others (otherwise the chunks alone would add up to more than d). So comparing each hash only with the
hashes whose chunk lies within that chunk's radius of its own finds every pair, and the full distance
is then checked exactly. A pair close on several chunks is kept only from the first of them, so each
pair is reported once.

With alternates (each image's pHashes mirrored, rotated, on the other background), two images also pair
when an alternate of one is within paktum_common.phash.alternate_distance of the plain hash of the other: the
same search between the alternates and the plain hashes. An alternate within ALTERNATE_PENALTY bits of its own
image's plain hash is left out of it: whatever it is near, that plain hash is near too, within the distance
(the triangle inequality), so the plain search has the pair already.

With symmetric hashes (paktum_common.phash.Symmetry), a pair of images that both have them, one symmetric, is
matched by them alone: the pHash pairs between such images are dropped, and the same search over every symmetric
hash, within SYMMETRIC_DISTANCE, adds theirs.

With signatures (paktum_common.dct_hash.signature), a plain pair of two signed images in the distance's last
SIGNATURE_MARGIN bits is kept only when their signatures agree (paktum_common.phash.plain_links); one refused that
way still links through an alternate, which is then looked for on every alternate of the two (the cross search
leaves out those near their own image's hash, whose pairs the plain search was counted on to find).

With signatures, a pair of signed images, neither symmetric, also links when the signatures are neighbours
(paktum_common.phash.signature_neighbours): the same pair search over their SimHashes, then the cosine.

With hue marks (paktum_common.hues, the signatures' end), a pair of two pictures whose hues disagree is dropped,
however it was found (paktum_common.phash.match refuses every way for them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from paktum_common import registry
from paktum_common.hues import hue_agreement
from paktum_common.phash import (
    ALTERNATE_PENALTY,
    DEGENERATE_MIN_BITS,
    NEIGHBOUR_KEEP,
    SIGNATURE_KEEP,
    SIGNATURE_MARGIN,
    SIMHASH_DISTANCE,
    SYMMETRIC_BITS,
    SYMMETRIC_DISTANCE,
    alternate_distance,
    fragile_rows,
    simhashes,
)

log = logging.getLogger("paktum.cleanup")

CHUNKS = registry.CHUNKS
CHUNK_BITS = registry.CHUNK_BITS
CHUNK_VALUES = registry.CHUNK_VALUES
CHUNK_MASK = np.uint64(CHUNK_VALUES - 1)
# Pairs materialised at once by the numpy path: bounds its memory at about 100 MB whatever the input.
NUMPY_BLOCK_PAIRS = 4_000_000

Method = Literal["auto", "numba", "numpy", "brute"]
# (owner index, alternate pHash) for every alternate of the hashes grouped: Catalogue.alternate_rows.
Alternates = tuple[np.ndarray, np.ndarray]
# (which hashes are symmetric, owner index, symmetric hash) for every symmetric hash: Catalogue.symmetry_rows.
SymmetryRows = tuple[np.ndarray, np.ndarray, np.ndarray]
# (every image's signature, (n, SIGNATURE_LENGTH) int8; which images have one, (n,) bool): Catalogue.signature_rows.
Signatures = tuple[np.ndarray, np.ndarray]

try:
    from paktum_cleanup import _compiled
except Exception as exc:
    # numba missing, or unable to compile or cache here (numba raises RuntimeError at import when no
    # cache directory is writable): the numpy path does the same work, slower.
    _compiled = None  # type: ignore[assignment]
    log.info("numba unavailable, variant grouping uses numpy", extra={"reason": str(exc)})


@dataclass(frozen=True)
class Grouping:
    """Every linked pair and the connected components they make, over indices into the input hashes."""

    pairs: np.ndarray  # (k, 2) int64, i < j, sorted
    labels: np.ndarray  # (n,) int64: the smallest index of the image's group; -1 when it is in no group

    def groups(self) -> list[np.ndarray]:
        """Each group's member indices in input order: the first is the group's anchor."""
        members = np.flatnonzero(self.labels >= 0)
        if members.size == 0:
            return []
        order = np.lexsort((members, self.labels[members]))
        members = members[order]
        cuts = np.flatnonzero(np.diff(self.labels[members])) + 1
        return np.split(members, cuts)


def chunk_radii(distance: int) -> np.ndarray:
    """Each chunk's search radius for `distance` (-1: the chunk need not be searched)."""
    return np.array(registry.chunk_radii(distance), dtype=np.int64)


def chunk_masks(radius: int) -> np.ndarray:
    """Every 16-bit XOR mask with at most `radius` bits set, the empty mask first."""
    return np.array(registry.chunk_masks(radius), dtype=np.int64)


def available_method() -> Literal["numba", "numpy"]:
    return "numba" if _compiled is not None else "numpy"


def variant_pairs(
    hashes: np.ndarray,
    distance: int,
    method: Method = "auto",
    excluded: np.ndarray | None = None,
    alternates: Alternates | None = None,
    symmetry: SymmetryRows | None = None,
    signatures: Signatures | None = None,
    hues: np.ndarray | None = None,
) -> np.ndarray:
    """Every pair (i, j), i < j, of non-degenerate hashes at most `distance` bits apart, sorted; with
    `alternates`, also every pair where a non-degenerate alternate of one is within alternate_distance(distance)
    of the other's hash; with `symmetry`, a pair of images that both have symmetric hashes, one of them
    symmetric, pairs by those alone, within min(SYMMETRIC_DISTANCE, distance) (paktum_common.phash.match's rule);
    with `signatures`, a plain pair of two signed images in the distance's last SIGNATURE_MARGIN bits links only
    when they agree (paktum_common.phash.plain_links, without reaching beyond the distance); with `hues` (every
    image's hue mark, (n, HUES_LENGTH) uint8, zeros for none), no pair of two images whose hues disagree.

    `excluded` is a (k, 2) array of index pairs that must not link ("not variants" decisions).
    """
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    usable_mask = ~degenerate_mask(hashes)
    usable = np.flatnonzero(usable_mask)
    sub = hashes[usable]
    through = alternate_distance(distance)
    owners, queries = _usable_alternates(alternates, usable_mask, through)
    signed = signatures is not None and bool(signatures[1].any())
    if method == "auto":
        # With a wide radius the chunk tables stop pruning anything: comparing all pairs is cheaper.
        mih_cost = CHUNK_VALUES * sum(len(chunk_masks(int(r))) for r in chunk_radii(distance) if r >= 0)
        method = "brute" if sub.size * (sub.size + 2 * queries.size) < mih_cost else available_method()
    if method == "numba" and _compiled is None:
        raise RuntimeError("numba is not available")
    local = _pairs_within(sub, distance, method)
    if signed and local.size:
        assert signatures is not None
        local = local[_plain_links(usable[local], hashes, distance, signatures, alternates)]
    if method == "brute":
        # The reference: every alternate, compared with every plain hash.
        cross = cross_pairs_brute_force(sub, queries, through) if queries.size else None
    else:
        owners, queries = _new_alternates(owners, queries, hashes)
        cross_join = _cross_numba if method == "numba" else _cross_numpy
        cross = cross_join(sub, queries, through) if queries.size else None
    pairs = usable[local] if local.size else np.empty((0, 2), dtype=np.int64)
    if cross is not None and cross.size:
        linked = np.stack([usable[cross[:, 0]], owners[cross[:, 1]]], axis=1)
        linked = linked[linked[:, 0] != linked[:, 1]]  # an image's own alternates near itself
        pairs = _unique_pairs(np.concatenate([pairs, linked]), hashes.size)
    if symmetry is not None and symmetry[1].size:
        pairs = _with_symmetric_pairs(pairs, hashes.size, distance, method, symmetry)
    if signed:
        assert signatures is not None
        neighbours = _neighbour_pairs(signatures, symmetry, method)
        if neighbours.size:
            pairs = _unique_pairs(np.concatenate([pairs, neighbours]), hashes.size)
    if hues is not None and pairs.size:
        pairs = pairs[hue_agreement(hues[pairs[:, 0]], hues[pairs[:, 1]])]
    if excluded is not None and excluded.size and pairs.size:
        pairs = pairs[~_pair_isin(pairs, excluded, hashes.size)]
    return _sorted_pairs(pairs)


def simhash_rows(signatures: Signatures, symmetry: SymmetryRows | None) -> tuple[np.ndarray, np.ndarray]:
    """(position, SimHash) of every image that can have signature neighbours: signed, not symmetric, fragile
    (paktum_common.phash.simhash_of; what the registry's SimHash table holds)."""
    marks, signed = signatures
    symmetric = symmetry[0] if symmetry is not None and symmetry[0].size == signed.size else np.zeros_like(signed)
    eligible = np.flatnonzero(signed & ~symmetric & fragile_rows(marks))
    return eligible, simhashes(marks[eligible])


def _neighbour_pairs(signatures: Signatures, symmetry: SymmetryRows | None, method: Method) -> np.ndarray:
    """Every pair of signed images, neither symmetric, whose signatures are neighbours (paktum_common.phash
    .signature_neighbours): SimHashes within SIMHASH_DISTANCE by the same pair search as the pHashes, then the
    cosine (_cosines)."""
    marks = signatures[0]
    eligible, codes = simhash_rows(signatures, symmetry)
    if eligible.size < 2:
        return np.empty((0, 2), dtype=np.int64)
    local = _pairs_within(codes, SIMHASH_DISTANCE, method)
    if not local.size:
        return np.empty((0, 2), dtype=np.int64)
    found = eligible[local]
    return found[_cosines(marks, found[:, 0], found[:, 1]) >= NEIGHBOUR_KEEP]


def _cosines(marks: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The cosine of each pair of signatures (rows `first` and `second` of `marks`), as
    paktum_common.phash.signature_cosine computes one: whole-number sums, then one square root and one division; 0
    for an all-zero row (a signature never is one)."""
    x = marks[first].astype(np.int64)
    y = marks[second].astype(np.int64)
    norm = np.sqrt((np.einsum("ij,ij->i", x, x) * np.einsum("ij,ij->i", y, y)).astype(np.float64))
    return np.einsum("ij,ij->i", x, y) / np.where(norm > 0, norm, 1.0)


def _plain_links(
    pairs: np.ndarray, hashes: np.ndarray, distance: int, signatures: Signatures, alternates: Alternates | None
) -> np.ndarray:
    """Which plain pairs (within the distance) link: paktum_common.phash.plain_links on each, by their signatures'
    cosine; a pair it refuses still links when an alternate of either side is within alternate_distance(distance)
    of the other's plain hash (match's other way), checked here on every alternate, since the cross search leaves
    out those near their own image's hash."""
    marks, signed = signatures
    a, b = pairs[:, 0], pairs[:, 1]
    bits = np.bitwise_count(hashes[a] ^ hashes[b]).astype(np.int64)
    asked = np.flatnonzero((bits > distance - SIGNATURE_MARGIN) & signed[a] & signed[b])
    keep = np.ones(len(pairs), dtype=bool)
    if asked.size:
        keep[asked] = _cosines(marks, a[asked], b[asked]) >= SIGNATURE_KEEP
    refused = np.flatnonzero(~keep)
    if refused.size and alternates is not None and alternates[0].size:
        keep[refused] = _linked_through(pairs[refused], hashes, alternates, alternate_distance(distance))
    return keep


def _linked_through(pairs: np.ndarray, hashes: np.ndarray, alternates: Alternates, through: int) -> np.ndarray:
    """For each pair, whether a non-degenerate alternate of either is within `through` bits of the other's hash."""
    owners = np.asarray(alternates[0], dtype=np.int64)
    values = np.asarray(alternates[1], dtype=np.uint64)
    order = np.argsort(owners, kind="stable")
    values = values[order]
    starts = np.zeros(hashes.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(owners, minlength=hashes.size), out=starts[1:])
    linked = np.zeros(len(pairs), dtype=bool)
    for mine, theirs in ((pairs[:, 0], pairs[:, 1]), (pairs[:, 1], pairs[:, 0])):
        counts = starts[mine + 1] - starts[mine]
        rows = np.repeat(np.arange(len(pairs)), counts)  # one row per alternate of `mine`, pair by pair
        if not rows.size:
            continue
        first = np.repeat(np.cumsum(counts) - counts, counts)
        slots = values[np.repeat(starts[mine], counts) + np.arange(rows.size) - first]
        near = (np.bitwise_count(slots ^ hashes[theirs[rows]]) <= through) & ~degenerate_mask(slots)
        linked |= np.bincount(rows[near], minlength=len(pairs)) > 0
    return linked


def _pairs_within(hashes: np.ndarray, distance: int, method: Method) -> np.ndarray:
    """Index pairs within `distance` among `hashes`, each once, by `method` (resolved: not "auto")."""
    if method == "brute":
        return pairs_brute_force(hashes, distance)
    if method == "numba":
        return _chunk_join(hashes, None, distance)
    return _pairs_mih(hashes, distance)


def _with_symmetric_pairs(
    pairs: np.ndarray, n: int, distance: int, method: Method, symmetry: SymmetryRows
) -> np.ndarray:
    """`pairs` (by pHashes) without those between two images with symmetric hashes one of which is symmetric, and
    with the pairs of such images whose symmetric hashes (any of one against any of the other) are near."""
    symmetric, owners, values = symmetry
    owners = np.asarray(owners, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.uint64)
    known = np.zeros(n, dtype=bool)
    known[owners] = True
    if pairs.size:
        a, b = pairs[:, 0], pairs[:, 1]
        by_symmetry = known[a] & known[b] & (symmetric[a] | symmetric[b])
        pairs = pairs[~by_symmetry]
    usable = np.bitwise_count(values) == SYMMETRIC_BITS // 2  # paktum_common.phash.is_degenerate_symmetric
    owners, values = owners[usable], np.ascontiguousarray(values[usable])
    local = _pairs_within(values, min(SYMMETRIC_DISTANCE, distance), method)
    if local.size:
        linked = np.stack([owners[local[:, 0]], owners[local[:, 1]]], axis=1)
        linked = linked[(linked[:, 0] != linked[:, 1]) & (symmetric[linked[:, 0]] | symmetric[linked[:, 1]])]
        if linked.size:
            return _unique_pairs(np.concatenate([pairs, linked]), n)
    return pairs


def degenerate_mask(hashes: np.ndarray) -> np.ndarray:
    """paktum_common.phash.is_degenerate of every hash, at once."""
    ones = np.bitwise_count(np.asarray(hashes, dtype=np.uint64))
    return (ones < DEGENERATE_MIN_BITS) | (ones > 64 - DEGENERATE_MIN_BITS)


def _usable_alternates(
    alternates: Alternates | None, usable_mask: np.ndarray, through: int
) -> tuple[np.ndarray, np.ndarray]:
    """The alternates that can link: not degenerate, of an image whose own hash is not degenerate (none when
    the distance leaves nothing to match through an alternate)."""
    if alternates is None or not alternates[0].size or through < 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint64)
    owners = np.asarray(alternates[0], dtype=np.int64)
    values = np.ascontiguousarray(alternates[1], dtype=np.uint64)
    keep = usable_mask[owners] & ~degenerate_mask(values)
    return owners[keep], np.ascontiguousarray(values[keep])


def _new_alternates(owners: np.ndarray, values: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The alternates that can add a pair to the plain ones. One within ALTERNATE_PENALTY bits of its image's
    plain hash A cannot: if it is within distance - ALTERNATE_PENALTY of B, A is within the distance of B."""
    keep = np.bitwise_count(values ^ hashes[owners]) > ALTERNATE_PENALTY
    return owners[keep], np.ascontiguousarray(values[keep])


def group_variants(
    hashes: np.ndarray,
    distance: int,
    method: Method = "auto",
    excluded: np.ndarray | None = None,
    alternates: Alternates | None = None,
    symmetry: SymmetryRows | None = None,
    signatures: Signatures | None = None,
    hues: np.ndarray | None = None,
) -> Grouping:
    """variant_pairs, and the groups they make: their connected components, with hues split where images without
    colour bridge coloured ones whose hues disagree (paktum_cleanup.bridges)."""
    pairs = variant_pairs(hashes, distance, method, excluded, alternates, symmetry, signatures, hues)
    labels = component_labels(hashes.size, pairs, method)
    if hues is not None:
        from paktum_cleanup import bridges  # it builds on component_labels, below

        weight = bridges.match_weight(hashes, distance, alternates, symmetry, signatures, hues)
        labels = bridges.unbridged(labels, pairs, hues, weight)
    return Grouping(pairs, labels)


def _chunk_join(held: np.ndarray, streamed: np.ndarray | None, distance: int) -> np.ndarray:
    """(held, streamed) index pairs within `distance`, each once, by _compiled.chunk_join on every chunk the
    distance needs searched; `streamed` None: the pairs within `held`."""
    assert _compiled is not None
    radii = chunk_radii(distance)
    found: list[np.ndarray] = []
    for chunk, masks in _searched_chunks(distance):
        h_order, h_sorted, h_starts, h_words = _compiled.chunk_sorted(held, chunk)
        if streamed is None:
            s_order, s_sorted, s_starts, s_words = h_order, h_sorted, h_starts, h_words
        else:
            s_order, s_sorted, s_starts, s_words = _compiled.chunk_sorted(streamed, chunk)
        local = _compiled.chunk_join(
            h_sorted, h_starts, h_words, s_sorted, s_starts, s_words, masks, chunk, distance, radii, streamed is None
        )
        if local.size:
            found.append(np.stack([h_order[local[:, 0]], s_order[local[:, 1]]], axis=1))
    return np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)


def _cross_numba(targets: np.ndarray, queries: np.ndarray, distance: int) -> np.ndarray:
    """(target, query) index pairs within `distance`. The larger side is the held one: its runs of one chunk
    value are the longer, and the compiled loops run along them."""
    if queries.size >= targets.size:
        return _chunk_join(queries, targets, distance)[:, ::-1]
    return _chunk_join(targets, queries, distance)


def _chunk_sorted(hashes: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hashes ordered by one chunk's value: (order, sorted hashes, where each value's run starts)."""
    keys = ((hashes >> np.uint64(chunk * CHUNK_BITS)) & CHUNK_MASK).astype(np.uint16)
    order = np.argsort(keys, kind="stable")
    starts = np.zeros(CHUNK_VALUES + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=CHUNK_VALUES), out=starts[1:])
    return order, np.ascontiguousarray(hashes[order]), starts


def _searched_chunks(distance: int) -> list[tuple[int, np.ndarray]]:
    """(chunk, its XOR masks) for every chunk the distance needs searched."""
    radii = chunk_radii(distance)
    return [(chunk, chunk_masks(int(radii[chunk]))) for chunk in range(CHUNKS) if radii[chunk] >= 0]


def _pairs_mih(hashes: np.ndarray, distance: int) -> np.ndarray:
    """The numpy twin of _chunk_join within one set."""
    radii = chunk_radii(distance)
    found: list[np.ndarray] = []
    for chunk, masks in _searched_chunks(distance):
        order, sorted_hashes, starts = _chunk_sorted(hashes, chunk)
        local = _chunk_pairs_numpy(sorted_hashes, starts, masks, chunk, distance, radii)
        if local.size:
            found.append(order[local])
    return np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)


def _cross_numpy(targets: np.ndarray, queries: np.ndarray, distance: int) -> np.ndarray:
    """The numpy twin of _cross_numba: the pairs within both sets at once, keeping those between the two."""
    found = _pairs_mih(np.concatenate([targets, queries]), distance)
    if not found.size:
        return np.empty((0, 2), dtype=np.int64)
    low, high = found.min(axis=1), found.max(axis=1)
    between = (low < targets.size) & (high >= targets.size)
    return np.stack([low[between], high[between] - targets.size], axis=1)


def _chunk_pairs_numpy(
    sorted_hashes: np.ndarray, starts: np.ndarray, masks: np.ndarray, chunk: int, distance: int, radii: np.ndarray
) -> np.ndarray:
    """The numpy twin of _compiled.chunk_join within one set: positions (p, q) in the chunk-sorted order."""
    n = sorted_hashes.size
    keys = np.repeat(np.arange(CHUNK_VALUES, dtype=np.int64), np.diff(starts))
    positions = np.arange(n, dtype=np.int64)
    found: list[np.ndarray] = []
    for mask in masks:
        if mask == 0:
            # Same bucket: each position pairs with the ones after it in its bucket.
            p_all, lo_all, hi_all = positions, positions + 1, starts[keys + 1]
        else:
            # Each pair of buckets once: from the lower key to the higher.
            partner = keys ^ mask
            keep = partner > keys
            p_all, lo_all, hi_all = positions[keep], starts[partner[keep]], starts[partner[keep] + 1]
        sizes = np.maximum(hi_all - lo_all, 0)
        ends = np.cumsum(sizes)
        begin = 0
        while begin < p_all.size:
            # A block of positions whose pairs fit NUMPY_BLOCK_PAIRS (at least one position).
            base = ends[begin - 1] if begin else 0
            stop = max(begin + 1, int(np.searchsorted(ends, base + NUMPY_BLOCK_PAIRS, side="right")))
            p, lo, size = p_all[begin:stop], lo_all[begin:stop], sizes[begin:stop]
            begin = stop
            total = int(size.sum())
            if total == 0:
                continue
            p_rep = np.repeat(p, size)
            offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(size) - size, size)
            q = np.repeat(lo, size) + offsets
            xor = sorted_hashes[p_rep] ^ sorted_hashes[q]
            hit = np.bitwise_count(xor) <= distance
            for earlier in range(chunk):
                if radii[earlier] >= 0:
                    part = (xor >> np.uint64(earlier * CHUNK_BITS)) & CHUNK_MASK
                    hit &= np.bitwise_count(part) > radii[earlier]
            if hit.any():
                found.append(np.stack([p_rep[hit], q[hit]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    return np.concatenate(found)


# Comparisons made at once by brute force: the temporaries (8 bytes each) stay within a few MB, which is about
# three times faster than blocks of 2,048 rows against 100,000 hashes (1.6 GB each).
BRUTE_BLOCK_COMPARISONS = 2_000_000


def pairs_brute_force(hashes: np.ndarray, distance: int, block: int | None = None) -> np.ndarray:
    """Every pair within the distance by comparing all pairs: quadratic, the reference and the small-n path."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    block = block or max(1, BRUTE_BLOCK_COMPARISONS // max(hashes.size, 1))
    found: list[np.ndarray] = []
    for start in range(0, hashes.size, block):
        rows = hashes[start : start + block]
        rest = hashes[start:]
        close = np.bitwise_count(rows[:, None] ^ rest[None, :]) <= distance
        i, j = np.nonzero(close)
        j = j + start
        i = i + start
        keep = j > i
        if keep.any():
            found.append(np.stack([i[keep], j[keep]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    return np.concatenate(found).astype(np.int64)


def cross_pairs_brute_force(
    targets: np.ndarray, queries: np.ndarray, distance: int, block: int | None = None
) -> np.ndarray:
    """Every (target, query) index pair within the distance by comparing all of them: the reference."""
    targets = np.ascontiguousarray(targets, dtype=np.uint64)
    block = block or max(1, BRUTE_BLOCK_COMPARISONS // max(targets.size, 1))
    found: list[np.ndarray] = []
    for start in range(0, queries.size, block):
        rows = np.ascontiguousarray(queries[start : start + block], dtype=np.uint64)
        q, t = np.nonzero(np.bitwise_count(rows[:, None] ^ targets[None, :]) <= distance)
        if q.size:
            found.append(np.stack([t, q + start], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    return np.concatenate(found).astype(np.int64)


def _unique_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    low, high = pairs.min(axis=1).astype(np.int64), pairs.max(axis=1).astype(np.int64)
    codes = np.unique(low * n + high)
    return np.stack([codes // n, codes % n], axis=1)


def component_labels(n: int, pairs: np.ndarray, method: Method = "auto") -> np.ndarray:
    """For each index the smallest index of its connected component, or -1 when it has no pair."""
    if method in ("auto", "numba") and _compiled is not None:
        roots = _compiled.union_find(n, pairs)
    else:
        roots = _components_numpy(n, pairs)
    labels = np.full(n, -1, dtype=np.int64)
    if pairs.size:
        linked = np.unique(pairs)
        labels[linked] = roots[linked]
    return labels


def _components_numpy(n: int, pairs: np.ndarray) -> np.ndarray:
    """Hook every edge to the smaller root, then jump pointers, until both ends of every edge agree."""
    parent = np.arange(n, dtype=np.int64)
    if not pairs.size:
        return parent
    i, j = pairs[:, 0], pairs[:, 1]
    while True:
        pi, pj = parent[i], parent[j]
        if np.array_equal(pi, pj):
            return parent
        np.minimum.at(parent, np.maximum(pi, pj), np.minimum(pi, pj))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def _pair_isin(pairs: np.ndarray, excluded: np.ndarray, n: int) -> np.ndarray:
    lo = np.minimum(excluded[:, 0], excluded[:, 1])
    hi = np.maximum(excluded[:, 0], excluded[:, 1])
    return np.isin(pairs[:, 0] * n + pairs[:, 1], lo * n + hi)


def _sorted_pairs(pairs: np.ndarray) -> np.ndarray:
    if not pairs.size:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.sort(pairs.astype(np.int64), axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def distances_to(hashes: np.ndarray, anchor: int, members: Sequence[int] | np.ndarray) -> np.ndarray:
    """Hamming distance of each member's hash to the anchor's."""
    return np.bitwise_count(hashes[np.asarray(members)] ^ hashes[anchor]).astype(np.int64)
