"""Matching with symmetric hashes: paktum_common.phash.match is the rule, and every place that finds pairs (the
full regroup in both of its paths and brute force, a group's split) finds exactly the pairs it says match."""

from __future__ import annotations

import random

import numpy as np
import pytest

from paktum_cleanup import variants
from paktum_common.groups import Member, VariantGroup, close_pairs, member_match
from paktum_common.phash import (
    NO_MATCH,
    SYMMETRIC_DISTANCE,
    Symmetry,
    is_degenerate_symmetric,
    match,
    symmetric_distance,
    symmetry_from_text,
    symmetry_to_text,
)

METHODS = [pytest.param("numpy", id="numpy"), pytest.param("brute", id="brute")]
if variants.available_method() == "numba":
    METHODS.append(pytest.param("numba", id="numba"))


def balanced(rng: random.Random) -> int:
    """A usable symmetric hash: 32 of 64 bits set."""
    return sum(1 << bit for bit in rng.sample(range(64), 32))


def swapped(rng: random.Random, value: int, swaps: int) -> int:
    """`value` with `swaps` set bits cleared and as many clear bits set: 2 * swaps bits away, still balanced."""
    ones = [b for b in range(64) if value >> b & 1]
    zeros = [b for b in range(64) if not value >> b & 1]
    for bit in rng.sample(ones, swaps) + rng.sample(zeros, swaps):
        value ^= 1 << bit
    return value


def near(rng: random.Random, value: int, bits: int) -> int:
    for bit in rng.sample(range(64), bits):
        value ^= 1 << bit
    return value


def plain(rng: random.Random) -> int:
    return balanced(rng)  # 32 bits set: never degenerate


def test_a_pair_with_a_symmetric_side_is_matched_by_symmetric_hashes_alone() -> None:
    rng = random.Random(1)
    a, sym = plain(rng), balanced(rng)
    close_plain = near(rng, a, 3)  # the pHashes say variants
    star, its_copy = Symmetry(True, (sym,)), Symmetry(False, (swapped(rng, sym, 1),))  # 2 bits apart
    other_star = Symmetry(True, (swapped(rng, sym, 10),))
    assert match(a, (), close_plain, (), star, its_copy) == (2, "none")
    # Near pHashes do not make two symmetric pictures variants when their symmetric hashes are far apart.
    assert match(a, (), close_plain, (), star, other_star) == (NO_MATCH, "none")
    # Neither symmetric, or one side hashed before symmetric hashes existed: the pHash rule.
    assert match(a, (), close_plain, (), Symmetry(False, (sym,)), Symmetry(False, (sym,))) == (3, "none")
    assert match(a, (), close_plain, (), star, None) == (3, "none")
    # Within SYMMETRIC_DISTANCE and no further.
    edge = Symmetry(False, (swapped(rng, sym, SYMMETRIC_DISTANCE // 2),))
    beyond = Symmetry(False, (swapped(rng, sym, SYMMETRIC_DISTANCE // 2 + 1),))
    assert match(a, (), plain(rng), (), star, edge)[0] == SYMMETRIC_DISTANCE
    assert match(a, (), plain(rng), (), star, beyond)[0] == NO_MATCH


def test_the_transform_of_a_symmetric_pair_is_the_nearest_by_phash_as_a_label() -> None:
    rng = random.Random(2)
    a, sym = plain(rng), balanced(rng)
    mirrored = near(rng, a, 0)
    alternates = (near(rng, a, 20),) * 7
    b = near(rng, a, 25)
    # b is a's mirror image by the pHashes (its "mirror" alternate, slot 0, is a itself), far as they are.
    theirs = (mirrored, *[near(rng, a, 30)] * 6)
    found = match(a, alternates, b, theirs, Symmetry(True, (sym,)), Symmetry(True, (sym,)))
    assert found == (0, "mirror")


def test_any_symmetric_hash_of_one_against_any_of_the_other() -> None:
    rng = random.Random(3)
    white, black = balanced(rng), balanced(rng)
    # A transparent picture's second symmetric hash (flattened on black) finds a copy flattened on black.
    assert symmetric_distance((white, black), (swapped(rng, black, 1),)) == 2
    assert symmetric_distance((swapped(rng, black, 1),), (white, black)) == 2
    # A degenerate hash (a picture flat on one background) is left out; with none usable, nothing matches.
    assert symmetric_distance((0, black), (black,)) == 0
    assert symmetric_distance((white, 0), (white,)) == 0
    assert symmetric_distance((0,), (0,)) == symmetric_distance((), (white,)) == NO_MATCH


def test_symmetry_text_round_trips_and_refuses_garbage() -> None:
    for shape in (Symmetry(True, (1, 2**64 - 1)), Symmetry(False, (12345,)), Symmetry(False, ())):
        assert symmetry_from_text(symmetry_to_text(shape)) == shape
    for bad in ("", "x0000000000000001", "s123"):
        with pytest.raises(ValueError):
            symmetry_from_text(bad)


def test_a_group_record_keeps_each_members_symmetry() -> None:
    shapes = {"a": Symmetry(True, (5, 6)), "b": None, "c": Symmetry(False, (7,))}
    group = VariantGroup.around("a", {"a": 1, "b": 2, "c": 3}, {"c": (9,)}, shapes)
    again = VariantGroup.from_json(group.to_json())
    assert again == group
    assert {m.md5: m.symmetry for m in again.members} == shapes


def random_catalogue(seed: int, n: int) -> tuple[list[int], list[tuple[int, ...]], list[Symmetry | None]]:
    """Planted clusters of pHashes and of symmetric hashes, some pictures symmetric, some without Symmetry (hashed
    before it existed), some symmetric hashes degenerate, some pictures with a second one."""
    rng = random.Random(seed)
    hashes: list[int] = []
    alternates: list[tuple[int, ...]] = []
    shapes: list[Symmetry | None] = []
    while len(hashes) < n:
        base, sym = plain(rng), balanced(rng)
        for _ in range(rng.randint(1, 5)):
            hashes.append(near(rng, base, rng.randint(0, 14)))
            alternates.append(tuple(near(rng, plain(rng), 0) for _ in range(rng.choice((0, 0, 7)))))
            kind = rng.random()
            if kind < 0.25:
                shapes.append(None)
                continue
            values = [swapped(rng, sym, rng.randint(0, 4)) if rng.random() < 0.9 else rng.getrandbits(64)]
            if rng.random() < 0.2:
                values.append(swapped(rng, sym, rng.randint(0, 3)))
            shapes.append(Symmetry(kind < 0.6, tuple(values)))
    return hashes[:n], alternates[:n], shapes[:n]


def reference(
    hashes: list[int], alternates: list[tuple[int, ...]], shapes: list[Symmetry | None], distance: int
) -> set[tuple[int, int]]:
    """Every pair that paktum_common.phash.match says is within the distance."""
    return {
        (i, j)
        for i in range(len(hashes))
        for j in range(i + 1, len(hashes))
        if match(hashes[i], alternates[i], hashes[j], alternates[j], shapes[i], shapes[j])[0] <= distance
    }


def rows(
    alternates: list[tuple[int, ...]], shapes: list[Symmetry | None]
) -> tuple[variants.Alternates, variants.SymmetryRows]:
    owners = np.array([i for i, alts in enumerate(alternates) for _ in alts], dtype=np.int64)
    values = np.array([h for alts in alternates for h in alts], dtype=np.uint64)
    symmetric = np.array([s is not None and s.symmetric for s in shapes], dtype=bool)
    sym_owners = np.array([i for i, s in enumerate(shapes) if s for _ in s.hashes], dtype=np.int64)
    sym_values = np.array([h for s in shapes if s for h in s.hashes], dtype=np.uint64)
    return (owners, values), (symmetric, sym_owners, sym_values)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("distance", [10, 6, 3])
def test_the_full_regroup_finds_exactly_the_pairs_match_finds(method: variants.Method, distance: int) -> None:
    hashes, alternates, shapes = random_catalogue(distance, 400)
    expected = reference(hashes, alternates, shapes, distance)
    alts, symmetry = rows(alternates, shapes)
    without = {tuple(p) for p in variants.variant_pairs(np.array(hashes, np.uint64), distance, method, None, alts)}
    # The test proves something: the symmetric rule both removes pHash pairs and adds pairs of its own.
    assert len(without - expected) > 5 and len(expected - without) > 5
    found = variants.variant_pairs(np.array(hashes, np.uint64), distance, method, None, alts, symmetry)
    assert {tuple(p) for p in found.tolist()} == expected
    assert len(found) == len(expected)


def test_a_groups_split_finds_the_same_pairs() -> None:
    hashes, alternates, shapes = random_catalogue(7, 300)
    expected = reference(hashes, alternates, shapes, 10)
    assert set(close_pairs(hashes, 10, block=64, alternates=alternates, symmetry=shapes)) == expected


def test_member_match_is_match() -> None:
    rng = random.Random(9)
    sym = balanced(rng)
    a = Member("a", plain(rng), 0, (), Symmetry(True, (sym,)))
    b = Member("b", plain(rng), 0, (), Symmetry(False, (swapped(rng, sym, 1),)))
    assert member_match(a, b) == match(a.phash, (), b.phash, (), a.symmetry, b.symmetry) == (2, "none")
    assert not is_degenerate_symmetric(sym)
