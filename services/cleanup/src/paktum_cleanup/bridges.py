"""Groups that images without colour bridge: split where the coloured images' hues disagree.

No pair of two coloured pictures whose hues disagree links (paktum_common.hues), but a group is every image linked
to another, step by step: a grey copy of a lime's wedge links to the lime's and to the lemon's (they are the same
in grey), and puts both wedges, and every copy of each, in one group. So in a group whose coloured images fall into
parts (linked to one another through coloured images only) with disagreeing hues, the parts are split into groups
whose hues agree (oldest first, each part with the first group it agrees with every part of, _clusters), and each
image without hue (below the floor, or hashed before hue marks) joins the group of the nearest image it links to,
the nearest first (the way Prim's algorithm grows a tree from several roots at once): a grey copy goes with the
picture it is nearest, and the mirrored copy of that grey copy after it.

Measured with bench/variants.py (groups, false pairs of files): 2,961 -> 2,242 on 290 pictures, 8,688 -> 6,673
and 5,753 -> 4,634 on two draws of 300 held-out ones, with the same recall of every kind; weighing the links by
the plain pHash distance instead of the way they link (a turned copy links through an alternate) cost 0.01 of
grey, turn and flattening recall.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable

import numpy as np

from paktum_cleanup.variants import component_labels
from paktum_common.hues import FLOOR_BYTE, hue_agreement
from paktum_common.phash import Symmetry, match

# How near two linked images are (i, j): the distance they link at.
Weight = Callable[[int, int], int]


def unbridged(labels: np.ndarray, pairs: np.ndarray, hues: np.ndarray, weight: Weight) -> np.ndarray:
    """`labels` (component_labels of `pairs`) with every group whose coloured parts disagree split as the module
    says; each new group labelled by its smallest index, an image left alone by -1 (in no group). `hues`: every
    image's hue mark, zeros for none."""
    if not pairs.size:
        return labels
    n = labels.size
    coloured = hues[:, 0] >= FLOOR_BYTE
    both = coloured[pairs[:, 0]] & coloured[pairs[:, 1]]
    if both.all() or not coloured.any():
        return labels  # every link is between coloured images (their parts are the groups), or none has colour
    parts = component_labels(n, pairs[both])
    parts = np.where(parts >= 0, parts, np.arange(n))
    members = np.flatnonzero(coloured & (labels >= 0))
    found = np.unique(np.stack([labels[members], parts[members]], axis=1), axis=0)  # by group, then part
    groups, starts, counts = np.unique(found[:, 0], return_index=True, return_counts=True)
    several = np.flatnonzero(counts > 1)
    if not several.size:
        return labels
    split = labels.copy()
    order = np.argsort(labels[pairs[:, 0]], kind="stable")
    edge_groups = labels[pairs[order, 0]]
    for at in several.tolist():
        group = int(groups[at])
        anchors = found[starts[at] : starts[at] + counts[at], 1]
        clusters = _clusters(anchors, hues)
        if len(set(clusters.values())) == 1:
            continue
        low, high = np.searchsorted(edge_groups, [group, group + 1])
        edges = pairs[order[low:high]]
        assigned = _grown(edges, coloured, parts, clusters, weight)
        for image, part in assigned.items():
            split[image] = part
    return _relabelled(split, labels)


def _clusters(anchors: np.ndarray, hues: np.ndarray) -> dict[int, int]:
    """Each part (by its anchor, its oldest image) -> the part whose group it joins: the first, oldest first, with
    every part of which its hues agree, else its own (hue agreement is not transitive: a greedy split that keeps
    parts of one colour together, whatever else bridged them)."""
    joined: dict[int, int] = {}
    kept: list[list[int]] = []  # each new group's parts, oldest first
    for anchor in sorted(int(a) for a in anchors):
        for members in kept:
            rows = hues[members]
            if hue_agreement(np.broadcast_to(hues[anchor], rows.shape), rows).all():
                members.append(anchor)
                joined[anchor] = members[0]
                break
        else:
            kept.append([anchor])
            joined[anchor] = anchor
    return joined


def _grown(
    edges: np.ndarray, coloured: np.ndarray, parts: np.ndarray, clusters: dict[int, int], weight: Weight
) -> dict[int, int]:
    """Each image of one group -> the part it goes with: a coloured image's own part's cluster (_clusters), and one
    without hue that of the nearest image it links to, nearest first (ties: the lower part, then the lower image)."""
    neighbours: dict[int, list[int]] = {}
    for a, b in edges.tolist():
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    assigned = {image: clusters[int(parts[image])] for image in neighbours if coloured[image]}
    frontier: list[tuple[int, int, int]] = []

    def reach(image: int) -> None:
        for other in neighbours[image]:
            if other not in assigned:
                heapq.heappush(frontier, (weight(image, other), assigned[image], other))

    for image in list(assigned):
        reach(image)
    while frontier:
        _, part, image = heapq.heappop(frontier)
        if image in assigned:
            continue
        assigned[image] = part
        reach(image)
    return assigned


def _relabelled(split: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Every group labelled by its smallest index again (a part's label is its smallest coloured image, which an
    image without hue joining it may come before); a part left alone is in no group (-1), as -1 stays -1."""
    grouped = np.flatnonzero(labels >= 0)
    smallest = np.full(labels.size, labels.size, dtype=np.int64)
    np.minimum.at(smallest, split[grouped], grouped)
    sizes = np.bincount(split[grouped], minlength=labels.size)
    relabelled = labels.copy()
    relabelled[grouped] = np.where(sizes[split[grouped]] > 1, smallest[split[grouped]], -1)
    return relabelled


def match_weight(
    hashes: np.ndarray,
    distance: int,
    alternates: tuple[np.ndarray, np.ndarray] | None,
    symmetry: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    signatures: tuple[np.ndarray, np.ndarray] | None,
    hues: np.ndarray,
) -> Weight:
    """The distance two linked images link at, by paktum_common.phash.match on the regroup's own rows (variants'
    Alternates, SymmetryRows, Signatures): the rule the pair was found by. Each image's rows are looked up when
    first asked for."""
    alt_rows = _Ragged(*alternates) if alternates is not None else None
    sym_rows = _Ragged(symmetry[1], symmetry[2]) if symmetry is not None else None

    @functools.cache
    def hashed(i: int) -> tuple[int, tuple[int, ...], Symmetry | None, bytes]:
        alts = alt_rows.of(i) if alt_rows is not None else ()
        sym = sym_rows.of(i) if sym_rows is not None else ()
        shape = Symmetry(bool(symmetry[0][i]), sym) if symmetry is not None and sym else None
        mark = signatures[0][i].tobytes() if signatures is not None and signatures[1][i] else b""
        return int(hashes[i]), alts, shape, mark + hues[i].tobytes() if mark and hues[i].any() else mark

    def weight(i: int, j: int) -> int:
        (a, alts_a, sym_a, mark_a), (b, alts_b, sym_b, mark_b) = hashed(i), hashed(j)
        # A pair of signature neighbours links at its pHash distance, which may be beyond `distance`: at the edge.
        return min(match(a, alts_a, b, alts_b, sym_a, sym_b, distance, (mark_a, mark_b))[0], distance)

    return weight


class _Ragged:
    """(owner, value) rows, each owner's values looked up by binary search (the rows sorted by owner, unless they
    are already: Catalogue's are)."""

    def __init__(self, owners: np.ndarray, values: np.ndarray) -> None:
        if owners.size > 1 and bool(np.any(owners[1:] < owners[:-1])):
            order = np.argsort(owners, kind="stable")
            owners, values = owners[order], values[order]
        self.owners, self.values = owners, values

    def of(self, owner: int) -> tuple[int, ...]:
        low = int(np.searchsorted(self.owners, owner))
        high = int(np.searchsorted(self.owners, owner, side="right"))
        return tuple(self.values[low:high].tolist())
