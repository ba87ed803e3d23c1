"""Exact variant grouping against a plain pairwise reference, on random and adversarial hash sets."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from paktum_cleanup import variants
from paktum_common.phash import ALTERNATE_PENALTY, is_degenerate

METHODS = [pytest.param("numpy", id="numpy")]
if variants.available_method() == "numba":
    METHODS.append(pytest.param("numba", id="numba"))


def reference_pairs(hashes: list[int], distance: int) -> set[tuple[int, int]]:
    """Every pair compared, in plain Python: slow, obviously right."""
    usable = [not is_degenerate(h) for h in hashes]
    return {
        (i, j)
        for i in range(len(hashes))
        for j in range(i + 1, len(hashes))
        if usable[i] and usable[j] and (hashes[i] ^ hashes[j]).bit_count() <= distance
    }


def reference_groups(n: int, pairs: set[tuple[int, int]]) -> set[frozenset[int]]:
    neighbours: dict[int, set[int]] = {}
    for i, j in pairs:
        neighbours.setdefault(i, set()).add(j)
        neighbours.setdefault(j, set()).add(i)
    seen: set[int] = set()
    groups: set[frozenset[int]] = set()
    for start in neighbours:
        if start in seen:
            continue
        stack, group = [start], set()
        while stack:
            node = stack.pop()
            if node not in group:
                group.add(node)
                stack.extend(neighbours[node] - group)
        seen |= group
        groups.add(frozenset(group))
    return groups


def flip(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


def spread_bits(rng: random.Random, per_chunk: tuple[int, int, int, int]) -> list[int]:
    """Bit positions to flip: `per_chunk[c]` distinct bits inside 16-bit chunk c."""
    bits: list[int] = []
    for chunk, count in enumerate(per_chunk):
        bits += [chunk * 16 + b for b in rng.sample(range(16), count)]
    return bits


def usable_flip(rng: random.Random, value: int, bits: int) -> int:
    """`value` with `bits` random bits flipped, redrawn until the result is not degenerate."""
    while True:
        flipped = flip(value, rng.sample(range(64), bits))
        if not is_degenerate(flipped):
            return flipped


def random_hash(rng: random.Random) -> int:
    while True:
        value = rng.getrandbits(64)
        if not is_degenerate(value):
            return value


def planted(seed: int, n: int, clusters: int) -> list[int]:
    """Uniform filler plus clusters of variants at 1..12 bits from a centre (so some at 11 and 12 do not link)."""
    rng = random.Random(seed)
    hashes = [random_hash(rng) for _ in range(n)]
    for _ in range(clusters):
        centre = random_hash(rng)
        hashes.append(centre)
        for _ in range(rng.randrange(1, 6)):
            hashes.append(flip(centre, rng.sample(range(64), rng.randrange(1, 13))))
    rng.shuffle(hashes)
    return hashes


def adversarial(seed: int) -> list[int]:
    """Pairs exactly at 10 and 11 bits spread over the chunks every way that matters, chains, copies, degenerates."""
    rng = random.Random(seed)
    hashes: list[int] = []
    spreads = [(10, 0, 0, 0), (0, 0, 0, 10), (3, 3, 2, 2), (2, 3, 3, 2), (3, 3, 3, 1), (1, 3, 3, 3), (3, 3, 1, 3),
               (3, 3, 3, 2), (3, 3, 3, 3), (4, 4, 2, 1), (0, 5, 5, 0), (2, 2, 2, 4), (3, 3, 4, 1)]  # fmt: skip
    for spread in spreads:
        for _ in range(3):
            base = random_hash(rng)
            hashes += [base, flip(base, spread_bits(rng, spread))]
    # A chain: each link 6 bits from the last, the ends far apart; one group all the same.
    link = random_hash(rng)
    for _ in range(12):
        hashes.append(link)
        link = usable_flip(rng, link, 6)
    # Many copies of one picture: a full chunk bucket.
    copy = random_hash(rng)
    hashes += [copy] * 40
    # Degenerate hashes: all zero, all one, near-flat; close to each other, and one close to a normal hash.
    hashes += [0, 0, 1, (1 << 64) - 1, (1 << 64) - 2, 0b111, 0b1011]
    # At the edge of the rule (whatever it is): the fewest set bits that still count, one bit either side.
    edge = next((k for k in range(65) if not is_degenerate((1 << k) - 1)), 32)
    hashes += [(1 << edge) - 1, (1 << (edge - 1)) - 1, (1 << (edge + 1)) - 1, ((1 << edge) - 1) << 3]
    rng.shuffle(hashes)
    return hashes


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("distance", [0, 1, 3, 7, 10, 11, 12])
def test_random_sets_match_the_reference(method: variants.Method, distance: int) -> None:
    hashes = planted(seed=distance, n=300, clusters=60)
    expected = reference_pairs(hashes, distance)
    found = variants.variant_pairs(np.array(hashes, dtype=np.uint64), distance, method)
    assert {tuple(p) for p in found.tolist()} == expected
    assert len(found) == len(expected)  # every pair once, not once per close chunk


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_adversarial_sets_match_the_reference(method: variants.Method, seed: int) -> None:
    hashes = adversarial(seed)
    expected = reference_pairs(hashes, 10)
    grouping = variants.group_variants(np.array(hashes, dtype=np.uint64), 10, method)
    assert {tuple(p) for p in grouping.pairs.tolist()} == expected
    assert {frozenset(g.tolist()) for g in grouping.groups()} == reference_groups(len(hashes), expected)


@pytest.mark.parametrize("method", METHODS)
def test_distance_ten_links_and_eleven_does_not(method: variants.Method) -> None:
    rng = random.Random(7)
    while True:  # a draw where all three count under the degenerate-hash rule
        base = random_hash(rng)
        ten = flip(base, spread_bits(rng, (3, 3, 3, 1)))
        eleven = flip(base, spread_bits(rng, (3, 3, 3, 2)))
        if not (is_degenerate(ten) or is_degenerate(eleven)) and (ten ^ eleven).bit_count() > 10:
            break
    assert (base ^ ten).bit_count() == 10 and (base ^ eleven).bit_count() == 11 and (ten ^ eleven).bit_count() > 10
    pairs = variants.variant_pairs(np.array([base, ten, eleven], dtype=np.uint64), 10, method)
    assert pairs.tolist() == [[0, 1]]


@pytest.mark.parametrize("method", METHODS)
def test_degenerate_hashes_never_link(method: variants.Method) -> None:
    hashes = np.array([0, 0, 1, (1 << 64) - 1, (1 << 64) - 1], dtype=np.uint64)
    assert all(is_degenerate(int(h)) for h in hashes)
    grouping = variants.group_variants(hashes, 10, method)
    assert grouping.pairs.size == 0 and grouping.groups() == [] and (grouping.labels == -1).all()


@pytest.mark.parametrize("method", METHODS)
def test_a_chain_is_one_group_anchored_at_its_first_image(method: variants.Method) -> None:
    rng = random.Random(3)
    chain = [random_hash(rng)]
    for _ in range(9):
        chain.append(usable_flip(rng, chain[-1], 7))
    assert (chain[0] ^ chain[-1]).bit_count() > 10
    hashes = [random_hash(rng), *chain, random_hash(rng)]
    groups = variants.group_variants(np.array(hashes, dtype=np.uint64), 10, method).groups()
    assert [g.tolist() for g in groups] == [list(range(1, 11))]


@pytest.mark.parametrize("method", METHODS)
def test_excluded_pairs_do_not_link(method: variants.Method) -> None:
    rng = random.Random(5)
    a = random_hash(rng)
    b = flip(a, [1, 20])
    c = random_hash(rng)
    d = flip(c, [3])
    hashes = np.array([a, b, c, d], dtype=np.uint64)
    grouping = variants.group_variants(hashes, 10, method, excluded=np.array([[1, 0]]))
    assert [g.tolist() for g in grouping.groups()] == [[2, 3]]


def test_brute_force_and_chunk_paths_agree_on_a_larger_set() -> None:
    hashes = np.array(planted(seed=11, n=4000, clusters=400), dtype=np.uint64)
    brute = variants.variant_pairs(hashes, 10, "brute")
    assert len(brute) > 400
    for method in ("numpy", variants.available_method()):
        assert np.array_equal(variants.variant_pairs(hashes, 10, method), brute)


def test_without_numba_the_numpy_path_groups_the_same() -> None:
    """A platform where numba cannot be imported still groups exactly, through numpy."""
    script = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from paktum_cleanup import variants\n"
        "assert variants.available_method() == 'numpy', variants.available_method()\n"
        "h = np.array([0x0F0F0F0F0F0F0F0F, 0x0F0F0F0F0F0F0F0E, 0x00FF00FF00FF00FF, 0x00FF00FF00FF03FF], np.uint64)\n"
        "print(variants.group_variants(h, 10).pairs.tolist())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[[0, 1], [2, 3]]"


def with_alternates(seed: int, n: int, per_image: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Planted hashes, and for each image `per_image` alternates: mostly random, some planted at 0..12 bits from
    another image's hash (a mirrored copy), some at 0..12 from the image's own (they must not pair it with itself),
    some degenerate (they must not link)."""
    rng = random.Random(seed)
    hashes = planted(seed, n - n // 5, n // 25)
    hashes += [random_hash(rng) for _ in range(n - len(hashes))]
    owners, values = [], []
    for owner in range(n):
        for _ in range(per_image):
            roll = rng.random()
            if roll < 0.02:
                value = flip(hashes[rng.randrange(n)], rng.sample(range(64), rng.randrange(0, 13)))
            elif roll < 0.03:
                value = flip(hashes[owner], rng.sample(range(64), rng.randrange(0, 4)))
            elif roll < 0.035:
                value = rng.choice([0, 1, (1 << 64) - 1])
            else:
                value = rng.getrandbits(64)
            owners.append(owner)
            values.append(value)
    return np.array(hashes, dtype=np.uint64), np.array(owners, dtype=np.int64), np.array(values, dtype=np.uint64)


def reference_with_alternates(hashes: np.ndarray, owners: np.ndarray, values: np.ndarray, distance: int) -> set:
    """Quadratic, written apart from the module: plain pairs within the distance, and every alternate within
    ALTERNATE_PENALTY bits less of every plain hash."""
    usable = np.array([not is_degenerate(int(h)) for h in hashes])
    good = np.array([not is_degenerate(int(v)) for v in values]) & usable[owners]
    found = reference_pairs([int(h) for h in hashes], distance) if hashes.size <= 400 else set()
    if hashes.size > 400:
        for start in range(0, hashes.size, 512):
            close = np.bitwise_count(hashes[start : start + 512, None] ^ hashes[None, :]) <= distance
            for i, j in zip(*np.nonzero(close), strict=True):
                if start + i < j and usable[start + i] and usable[j]:
                    found.add((int(start + i), int(j)))
    for start in range(0, values.size, 512):
        close = np.bitwise_count(values[start : start + 512, None] ^ hashes[None, :]) <= distance - ALTERNATE_PENALTY
        for q, t in zip(*np.nonzero(close), strict=True):
            owner = int(owners[start + q])
            if good[start + q] and usable[t] and owner != t:
                found.add((min(owner, int(t)), max(owner, int(t))))
    return found


@pytest.mark.parametrize("method", [*METHODS, pytest.param("brute", id="brute")])
@pytest.mark.parametrize(("n", "distance"), [(300, 10), (300, 6), (300, 13), (10_000, 10)])
def test_pairs_through_alternates_match_the_reference(method: variants.Method, n: int, distance: int) -> None:
    hashes, owners, values = with_alternates(n + distance, n, 7 if n > 300 else 15)
    expected = reference_with_alternates(hashes, owners, values, distance)
    plain_only = {tuple(p) for p in variants.variant_pairs(hashes, distance, method).tolist()}
    assert len(expected - plain_only) > n // 100  # the alternates add pairs: the test proves something
    found = variants.variant_pairs(hashes, distance, method, alternates=(owners, values))
    assert {tuple(p) for p in found.tolist()} == expected
    assert len(found) == len(expected)


@pytest.mark.parametrize("method", [*METHODS, pytest.param("brute", id="brute")])
def test_an_alternate_links_only_within_the_penalty_less(method: variants.Method) -> None:
    rng = random.Random(5)
    a, b = random_hash(rng), random_hash(rng)
    while (a ^ b).bit_count() < 30:
        b = random_hash(rng)
    through = 10 - ALTERNATE_PENALTY
    hashes = np.array([a, b, random_hash(rng)], dtype=np.uint64)
    owners = np.array([0, 2], dtype=np.int64)
    values = np.array([usable_flip(rng, b, through), usable_flip(rng, b, through + 1)], dtype=np.uint64)
    found = variants.variant_pairs(hashes, 10, method, alternates=(owners, values))
    assert found.tolist() == [[0, 1]]
    # Below the penalty nothing can match through an alternate, not even a copy of the other's hash.
    copies = np.array([b, b], dtype=np.uint64)
    assert variants.variant_pairs(hashes, ALTERNATE_PENALTY - 1, method, alternates=(owners, copies)).size == 0


@pytest.mark.parametrize("method", METHODS)
def test_alternates_near_their_own_hash_find_every_pair_they_alone_would(method: variants.Method) -> None:
    # The search leaves out an alternate within ALTERNATE_PENALTY bits of its own image's hash (the plain
    # search has whatever it finds); one bit further it must still be searched. Each alternate here is that
    # near its own hash, and some are that near another image's.
    rng = random.Random(11)
    hashes = [random_hash(rng) for _ in range(400)]
    owners, values = [], []
    for owner in range(400):
        for _ in range(4):
            own = usable_flip(rng, hashes[owner], rng.randrange(0, ALTERNATE_PENALTY + 2))
            other = usable_flip(rng, hashes[rng.randrange(400)], rng.randrange(0, 12))
            owners.append(owner)
            values.append(own if rng.random() < 0.5 else other)
    # Pictures whose alternate is near their own hash and near another's: make the other's hash just far enough.
    for owner in range(0, 400, 10):
        near = usable_flip(rng, hashes[owner], ALTERNATE_PENALTY + 1)
        hashes[owner + 1] = usable_flip(rng, near, 10 - ALTERNATE_PENALTY)
        owners.append(owner)
        values.append(near)
    h, o, v = np.array(hashes, dtype=np.uint64), np.array(owners, dtype=np.int64), np.array(values, dtype=np.uint64)
    expected = reference_with_alternates(h, o, v, 10)
    assert {(i, i + 1) for i in range(0, 400, 10)} - reference_pairs(hashes, 10)  # some only through alternates
    found = variants.variant_pairs(h, 10, method, alternates=(o, v))
    assert {tuple(p) for p in found.tolist()} == expected and len(found) == len(expected)


def crowded(seed: int, n: int) -> list[int]:
    """Hashes whose every chunk takes one of a few values, so each chunk table has long runs of one value
    (the compiled loops run along them), with pairs at 9-12 bits spread over the chunks."""
    rng = random.Random(seed)
    values = [[rng.getrandbits(16) for _ in range(6)] for _ in range(4)]
    hashes: list[int] = []
    while len(hashes) < n:
        base = sum(rng.choice(values[c]) << (16 * c) for c in range(4))
        if is_degenerate(base):
            continue
        hashes.append(base)
        if rng.random() < 0.3:
            hashes.append(flip(base, rng.sample(range(64), rng.randrange(0, 13))))
    return hashes[:n]


@pytest.mark.parametrize("method", METHODS)
def test_long_runs_of_one_chunk_value_match_the_reference(method: variants.Method) -> None:
    hashes = crowded(3, 1500)
    rng = random.Random(4)
    owners = [o for o in range(1500) for _ in range(3)]
    values = [flip(hashes[rng.randrange(1500)], rng.sample(range(64), rng.randrange(0, 12))) for _ in owners]
    h, o, v = np.array(hashes, dtype=np.uint64), np.array(owners, dtype=np.int64), np.array(values, dtype=np.uint64)
    for distance in (10, 7):
        assert {tuple(p) for p in variants.variant_pairs(h, distance, method).tolist()} == reference_pairs(
            hashes, distance
        )
        expected = reference_with_alternates(h, o, v, distance)
        found = variants.variant_pairs(h, distance, method, alternates=(o, v))
        assert {tuple(p) for p in found.tolist()} == expected and len(found) == len(expected)
