"""Variant groups and pHash registries on a real Redis: atomic replacement, linking, decisions, reads."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import orjson
import pytest
from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.groups import (
    GroupsBuild,
    VariantGroup,
    group_stats,
    link_images,
    mark_not_variants,
    related_many,
    remove_from_groups,
)
from paktum_common.phash import (
    ALL_SLOTS,
    ALTERNATE_PENALTY,
    NEIGHBOUR_FLAT,
    NO_MATCH,
    PRIMARY_SLOTS,
    Symmetry,
    is_degenerate,
    match,
)
from paktum_common.redis_client import connect
from paktum_common.registry import IMAGES, PURGED


def md5(n: int) -> str:
    return f"{n:032x}"


def flip(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


def random_hash(rng: random.Random) -> int:
    while True:
        value = rng.getrandbits(64)
        if not is_degenerate(value):
            return value


async def publish(redis: Redis, groups: list[dict[str, int]], run: str = "r") -> None:
    build = GroupsBuild(redis, run)
    await build.add([VariantGroup.around(next(iter(g)), g) for g in groups])
    await build.publish({"groups": len(groups), "largest": max((len(g) for g in groups), default=0), "distance": 10})


async def test_related_is_nearest_first_with_distances_and_a_distance_filter(redis_client: Redis) -> None:
    base = 0x0F0F_3C3C_A5A5_5A5A
    group = {
        md5(1): base,
        md5(2): flip(base, [1, 2, 3, 4, 5, 6]),
        md5(3): flip(base, [9]),
        md5(4): flip(base, [40, 41]),
    }
    await publish(redis_client, [group])
    related = await related_many(redis_client, [md5(1), md5(2), md5(9)])
    assert related[md5(1)] == [(md5(3), 1), (md5(4), 2), (md5(2), 6)]
    assert related[md5(2)][0] == (md5(1), 6) and {i for i, _ in related[md5(2)]} == {md5(1), md5(3), md5(4)}
    assert related[md5(9)] == []
    assert (await related_many(redis_client, [md5(1)], max_distance=2))[md5(1)] == [(md5(3), 1), (md5(4), 2)]
    stats = await group_stats(redis_client)
    assert stats.groups == 1 and stats.largest == 4 and stats.finished > 0


async def test_a_new_run_replaces_every_group_and_an_unfinished_one_changes_nothing(redis_client: Redis) -> None:
    base = 0x1234_5678_9ABC_DEF0
    await publish(redis_client, [{md5(1): base, md5(2): flip(base, [0])}], run="one")
    # A run that died while writing: its keys exist, expire, and are never read.
    dead = GroupsBuild(redis_client, "dead")
    await dead.add([VariantGroup.around(md5(5), {md5(5): base, md5(6): flip(base, [3])})])
    assert (await related_many(redis_client, [md5(1), md5(5)])) == {md5(1): [(md5(2), 1)], md5(5): []}
    assert await redis_client.ttl(dead.members_key) > 0
    # The next complete run replaces the old groups entirely: md5(1)'s group is gone, not merged.
    await publish(redis_client, [{md5(3): base, md5(4): flip(base, [7])}], run="two")
    assert await related_many(redis_client, [md5(1), md5(3)]) == {md5(1): [], md5(3): [(md5(4), 1)]}
    assert await redis_client.ttl(keys.GROUP_MEMBERS) == -1  # the swapped-in keys do not expire
    await publish(redis_client, [], run="three")
    assert await related_many(redis_client, [md5(3)]) == {md5(3): []}
    assert (await group_stats(redis_client)).groups == 0


async def test_registry_finds_exactly_the_hashes_within_the_distance(redis_client: Redis) -> None:
    rng = random.Random(4)
    centre = random_hash(rng)
    stored = {md5(i): random_hash(rng) for i in range(300)}
    for i, bits in enumerate([3, 8, 10, 11, 12], start=1000):
        stored[md5(i)] = flip(centre, rng.sample(range(64), bits))
    stored[md5(2000)] = 0  # degenerate: registered, never found
    await IMAGES.add(redis_client, stored)
    for query, distance in [(centre, 10), (centre, 3), (stored[md5(5)], 10), (0, 10)]:
        expected = sorted(
            ((m, (h ^ query).bit_count()) for m, h in stored.items() if (h ^ query).bit_count() <= distance),
            key=lambda item: (item[1], item[0]),
        )
        expected = [] if is_degenerate(query) else [(m, d) for m, d in expected if not is_degenerate(stored[m])]
        assert (await IMAGES.near(redis_client, [query], distance))[0] == expected
    assert await IMAGES.remove(redis_client, [md5(1000), md5(4242)]) == 1
    assert md5(1000) not in {m for m, _ in (await IMAGES.near(redis_client, [centre], 10))[0]}
    assert (await IMAGES.get(redis_client, [md5(1000), md5(1001)])) == {md5(1001): stored[md5(1001)]}
    assert await PURGED.near(redis_client, [centre], 10) == [[]]  # the purged registry is a separate one


async def test_near_any_finds_what_match_links_through_alternates(redis_client: Redis) -> None:
    # Ingest linking (near_any) and the regroup share paktum_common.phash.match's rule: a registered image is
    # found when the new one's plain hash is within the distance of it, or an alternate within ALTERNATE_PENALTY
    # bits less, and its distance is match's.
    rng = random.Random(6)
    stored = {md5(i): random_hash(rng) for i in range(200)}
    await IMAGES.add(redis_client, stored)
    hashes = list(stored.values())
    queries = []
    for _ in range(40):
        plain = flip(rng.choice(hashes), rng.sample(range(64), rng.randrange(6, 14)))
        alternates = [flip(rng.choice(hashes), rng.sample(range(64), rng.randrange(5, 12))) for _ in range(7)]
        alternates.append(flip(plain, rng.sample(range(64), rng.randrange(0, ALTERNATE_PENALTY + 1))))  # near itself
        alternates.append(0)  # degenerate: never matches
        queries.append((plain, *alternates))
    through = sum(1 for q in queries for h in q[1:8] if any(8 <= (h ^ s).bit_count() <= 10 for s in hashes))
    assert through > 5  # alternates at the edge of the rule: the test proves something
    for distance in (10, 12, ALTERNATE_PENALTY - 1):
        found = await IMAGES.near_any(redis_client, queries, distance)
        for query, near in zip(queries, found, strict=True):
            measured = ((m, match(query[0], query[1:], h, ())[0]) for m, h in stored.items())
            expected = sorted(((m, bits) for m, bits in measured if bits <= distance), key=lambda i: (i[1], i[0]))
            assert near == expected


async def test_an_opaque_copy_on_the_other_background_finds_a_transparent_image(redis_client: Redis) -> None:
    # A transparent picture's plain pHash is of it on white; on black it is an alternate (slot PRIMARY_SLOTS),
    # which match() weighs against the other side's plain hash. An opaque JPEG flattened on black has no alternate
    # near the picture on white: only its own plain hash near the stored one's alternate, in the other-background
    # table.
    rng = random.Random(12)
    stored, alternates = {}, {}
    for i in range(120):
        stored[md5(i)] = random_hash(rng)
        alternates[md5(i)] = tuple(random_hash(rng) for _ in range(ALL_SLOTS if i % 2 == 0 else PRIMARY_SLOTS))
    star = md5(200)  # transparent but symmetric: matched by symmetric hashes alone, never by its other background
    stored[star], alternates[star] = random_hash(rng), tuple(random_hash(rng) for _ in range(ALL_SLOTS))
    await IMAGES.add(redis_client, stored, alternates, {star: Symmetry(True, (balanced(rng),))})
    queries = []
    for i in range(0, 120, 2):
        on_black = alternates[md5(i)][PRIMARY_SLOTS]
        plain = flip(on_black, rng.sample(range(64), rng.randrange(0, 8)))
        queries.append((plain, *(random_hash(rng) for _ in range(PRIMARY_SLOTS))))
    queries.append((alternates[star][PRIMARY_SLOTS], *(random_hash(rng) for _ in range(PRIMARY_SLOTS))))
    found = await IMAGES.near_any(redis_client, queries, 10, [Symmetry(False, (0,))] * len(queries))
    for query, near in zip(queries, found, strict=True):
        measured = ((m, match(query[0], query[1:], h, alternates[m])[0]) for m, h in stored.items() if m != star)
        expected = sorted(((m, bits) for m, bits in measured if bits <= 10), key=lambda i: (i[1], i[0]))
        assert near == expected
    assert sum(bool(near) for near in found[:-1]) > 40 and found[-1] == []  # found on black; the star is not
    await IMAGES.remove(redis_client, list(stored))
    assert [k async for k in redis_client.scan_iter(f"{keys.OTHER_BACKGROUND_CHUNKS}:*")] == []


def balanced(rng: random.Random) -> int:
    return sum(1 << bit for bit in rng.sample(range(64), 32))  # a usable symmetric hash


def swapped(rng: random.Random, value: int, swaps: int) -> int:
    """2 * swaps bits away, still 32 set."""
    ones = [b for b in range(64) if value >> b & 1]
    zeros = [b for b in range(64) if not value >> b & 1]
    return flip(value, rng.sample(ones, swaps) + rng.sample(zeros, swaps))


async def test_near_any_matches_symmetric_pictures_by_their_symmetric_hashes(redis_client: Redis) -> None:
    # A pair with a symmetric side is matched by symmetric hashes alone (paktum_common.phash.match): a symmetric
    # image is found by every image's symmetric hashes, never by its noisy pHash, and finds nothing by its own.
    rng = random.Random(8)
    centres = [balanced(rng) for _ in range(10)]
    stored: dict[str, int] = {}
    shapes: dict[str, Symmetry] = {}
    for i in range(300):
        stored[md5(i)] = random_hash(rng)
        values = (swapped(rng, rng.choice(centres), rng.randrange(0, 4)),)
        shapes[md5(i)] = Symmetry(rng.random() < 0.3, values + ((0,) if i % 7 == 0 else ()))
    await IMAGES.add(redis_client, stored, symmetry=shapes)
    queries, query_shapes = [], []
    for _ in range(60):
        origin = rng.choice(list(stored))
        queries.append((flip(stored[origin], rng.sample(range(64), rng.randrange(4, 12))),))
        sym = swapped(rng, shapes[origin].hashes[0], rng.randrange(0, 4))
        query_shapes.append(Symmetry(rng.random() < 0.4, (sym,)))
    found = await IMAGES.near_any(redis_client, queries, 10, query_shapes)
    by_symmetry = by_phash = 0
    for query, shape, near in zip(queries, query_shapes, found, strict=True):
        measured = ((m, match(query[0], (), h, (), shape, shapes[m])[0]) for m, h in stored.items())
        expected = sorted(((m, bits) for m, bits in measured if bits <= 10), key=lambda i: (i[1], i[0]))
        assert near == expected
        for m, _ in near:
            if shape.symmetric or shapes[m].symmetric:
                by_symmetry += 1
            else:
                by_phash += 1
    assert by_symmetry > 20 and by_phash > 10  # both rules at work: the test proves something
    # A symmetric image is in the symmetric chunk tables alone; removing it empties them of it.
    star = next(m for m, s in shapes.items() if s.symmetric)
    assert (await IMAGES.near(redis_client, [stored[star]], 0))[0] == []
    assert (await IMAGES.stored(redis_client, [star]))[2] == {star: shapes[star]}
    await IMAGES.remove(redis_client, list(stored))
    leftovers = [k async for k in redis_client.scan_iter(f"{keys.SYMMETRIC_CHUNKS}:*")]
    leftovers += [k async for k in redis_client.scan_iter(f"{keys.SYMMETRIC_ONLY_CHUNKS}:*")]
    leftovers += [k async for k in redis_client.scan_iter(f"{keys.PHASH_CHUNKS}:*")]
    assert leftovers == [] and not await redis_client.exists(keys.PHASH_SYMMETRY)


async def test_an_image_registered_again_with_its_symmetry_leaves_the_phash_tables(redis_client: Redis) -> None:
    rng = random.Random(9)
    phash, sym = random_hash(rng), balanced(rng)
    await IMAGES.add(redis_client, {md5(1): phash})  # hashed before symmetric hashes existed
    assert (await IMAGES.near(redis_client, [phash], 0))[0] == [(md5(1), 0)]
    await IMAGES.add(redis_client, {md5(1): phash}, symmetry={md5(1): Symmetry(True, (sym,))})
    assert (await IMAGES.near(redis_client, [phash], 0))[0] == []
    found = await IMAGES.near_any(redis_client, [(random_hash(rng),)], 10, [Symmetry(False, (swapped(rng, sym, 1),))])
    assert found == [[(md5(1), 2)]]


async def test_linking_groups_a_turned_star_and_keeps_distinct_stars_apart(redis_client: Redis) -> None:
    rng = random.Random(10)
    star, other = balanced(rng), balanced(rng)
    noisy = random_hash(rng)
    shapes = {
        md5(1): Symmetry(True, (star,)),
        md5(2): Symmetry(True, (swapped(rng, other, 1),)),  # another star whose pHash is 2 bits from the first's
        md5(3): Symmetry(False, (swapped(rng, star, 1),)),  # the first, watermarked: no longer symmetric itself
    }
    phashes = {md5(1): noisy, md5(2): flip(noisy, [1, 2]), md5(3): flip(noisy, rng.sample(range(64), 25))}
    for image in phashes:
        await link_images(redis_client, {image: phashes[image]}, 10, symmetry={image: shapes[image]})
    related = await related_many(redis_client, list(phashes))
    assert related == {md5(1): [(md5(3), 2)], md5(2): [], md5(3): [(md5(1), 2)]}


async def test_linking_joins_and_merges_groups_as_images_arrive(redis_client: Redis) -> None:
    rng = random.Random(9)
    a = random_hash(rng)
    b = flip(a, rng.sample(range(64), 8))  # near a
    far = flip(a, rng.sample(range(64), 20))
    c = flip(far, [0, 1])  # near far, not near a
    assert await link_images(redis_client, {md5(1): a}, 10) == 0
    assert await link_images(redis_client, {md5(3): far, md5(4): c}, 10) == 1
    assert await link_images(redis_client, {md5(2): b}, 10) == 1
    related = await related_many(redis_client, [md5(1), md5(3)])
    assert related[md5(1)] == [(md5(2), 8)] and related[md5(3)] == [(md5(4), 2)]
    # An image between the two groups merges them; the larger (older) anchor stays.
    bridge_bits = [i for i in range(64) if (a ^ far) >> i & 1]
    bridge = flip(a, bridge_bits[:10])
    assert (bridge ^ a).bit_count() == 10 and (bridge ^ far).bit_count() == 10
    await link_images(redis_client, {md5(5): bridge}, 10)
    assert {m for m, _ in (await related_many(redis_client, [md5(5)]))[md5(5)]} == {md5(1), md5(2), md5(3), md5(4)}
    assert (await group_stats(redis_client)).groups == 1
    # Degenerate hashes are registered but join nothing.
    assert await link_images(redis_client, {md5(6): 0, md5(7): 1}, 10) == 0
    assert await IMAGES.get(redis_client, [md5(6)]) == {md5(6): 0}


async def test_not_variants_splits_the_group_and_holds_against_relinking(redis_client: Redis) -> None:
    base = 0x3C3C_F0F0_0F0F_A5A5
    near = flip(base, [5, 6])
    other = flip(base, list(range(40, 58)))  # far from both
    other_near = flip(other, [1])
    await publish(redis_client, [{md5(1): base, md5(2): near}, {md5(3): other, md5(4): other_near}])
    result = await mark_not_variants(redis_client, md5(1), md5(2))
    assert result.newly_marked and not result.still_grouped
    assert await related_many(redis_client, [md5(1), md5(2), md5(3)]) == {md5(1): [], md5(2): [], md5(3): [(md5(4), 1)]}
    assert not (await mark_not_variants(redis_client, md5(1), md5(2))).newly_marked
    # The hasher seeing one of them again does not undo the decision.
    await IMAGES.add(redis_client, {md5(1): base})
    await link_images(redis_client, {md5(2): near}, 10)
    assert (await related_many(redis_client, [md5(2)]))[md5(2)] == []
    with pytest.raises(ValueError):
        await mark_not_variants(redis_client, md5(1), md5(1))


async def test_not_variants_linked_through_others_are_never_shown_as_related(redis_client: Redis) -> None:
    base = 0x5A5A_F00F_0FF0_3C3C
    middle = flip(base, [1, 2, 3, 4, 5, 6])
    await publish(redis_client, [{md5(1): base, md5(2): middle, md5(3): flip(base, [1, 2, 3, 20, 21, 22])}])
    result = await mark_not_variants(redis_client, md5(1), md5(3))
    assert result.still_grouped
    related = await related_many(redis_client, [md5(1), md5(3)])
    assert related == {md5(1): [(md5(2), 6)], md5(3): [(md5(2), 6)]}


async def test_removing_the_link_of_a_chain_splits_it(redis_client: Redis) -> None:
    a = 0x0123_4567_89AB_CDEF
    b = flip(a, [0, 1, 2, 3, 4, 5, 6, 7])
    c = flip(b, [30, 31, 32, 33, 34, 35, 36, 37])
    d = flip(c, [1])
    assert (a ^ c).bit_count() > 10
    await publish(redis_client, [{md5(1): a, md5(2): b, md5(3): c, md5(4): d}])
    await remove_from_groups(redis_client, [md5(2)])
    related = await related_many(redis_client, [md5(1), md5(2), md5(3)])
    assert related == {md5(1): [], md5(2): [], md5(3): [(md5(4), 1)]}
    assert await redis_client.hget(keys.GROUP_OF, md5(1)) is None


async def test_hashers_linking_near_images_at_once_end_in_one_group(redis_url: str) -> None:
    rng = random.Random(12)
    base = random_hash(rng)
    images = {md5(i): flip(base, rng.sample(range(64), 3)) for i in range(12)}
    clients = [connect(redis_url) for _ in images]
    try:
        await asyncio.gather(*(link_images(c, {m: h}, 10) for c, (m, h) in zip(clients, images.items(), strict=True)))
    finally:
        for client in clients:
            await client.aclose()
    async with connect(redis_url) as client:
        related = await related_many(client, list(images))
        assert all({m, *(o for o, _ in related[m])} == set(images) for m in images)
        assert (await group_stats(client)).groups == 1


def signature(rng: random.Random, near: bytes = b"", noise: int = 0, hue: int = -1) -> bytes:
    """A signature of 63 coefficients (random, or `near`'s with each moved by up to `noise`), NEIGHBOUR_FLAT of them
    at the median (a fragile pHash, which may have neighbours), then a hue mark: all of a strong chroma in hue bin
    `hue`, none when `hue` is -1."""
    if near:
        base = np.frombuffer(near[:63], dtype=np.int8).astype(np.int64)
        coefficients = np.clip(base + [rng.randint(-noise, noise) for _ in range(63)], -127, 127)
    else:
        coefficients = np.array([rng.randint(-127, 127) for _ in range(63)])
    coefficients[:NEIGHBOUR_FLAT] = 0
    mark = b"" if hue < 0 else bytes([120, *(255 if k == hue else 0 for k in range(12))])
    return coefficients.astype(np.int8).tobytes() + mark


async def test_the_simhash_table_finds_signature_candidates_and_forgets_them_with_the_image(
    redis_client: Redis,
) -> None:
    rng = random.Random(21)
    centre = rng.getrandbits(64)
    phashes = {md5(i): random_hash(rng) for i in range(300)}
    codes = {md5(i): rng.getrandbits(64) for i in range(300)}
    for i, bits in enumerate([0, 2, 4, 5, 7], start=1000):
        phashes[md5(i)] = random_hash(rng)
        codes[md5(i)] = flip(centre, rng.sample(range(64), bits))
    shapes = {md5(1000): Symmetry(True, (balanced(rng),))}  # symmetric: no neighbours, so not in the table
    phashes[md5(1001)] = flip(phashes[md5(1002)], [0, 1, 2])  # found by its pHash too: at its pHash distance
    await IMAGES.add(redis_client, phashes, symmetry=shapes, simhashes=codes)

    found = (await IMAGES.near_any(redis_client, [(phashes[md5(1002)],)], 10, [None], [centre]))[0]
    assert found == [(md5(1002), 0), (md5(1001), 3)]
    elsewhere = random_hash(rng)
    found = (await IMAGES.near_any(redis_client, [(elsewhere,)], 10, [None], [centre]))[0]
    assert found == [(md5(1001), 11), (md5(1002), 11)]  # within SIMHASH_DISTANCE: ranked beyond the distance
    assert (await IMAGES.near_any(redis_client, [(elsewhere,)], 10, [Symmetry(True, (balanced(rng),))], [centre])) == [
        []
    ]  # a symmetric picture has no signature neighbours either
    assert (await IMAGES.near_any(redis_client, [(elsewhere,)], 10))[0] == []  # no SimHash asked, none found

    await IMAGES.replace(redis_client, {md5(1002): phashes[md5(1002)]}, {}, {}, {md5(1002): ~centre & (2**64 - 1)})
    assert (await IMAGES.near_any(redis_client, [(elsewhere,)], 10, [None], [centre]))[0] == [(md5(1001), 11)]
    stale = {md5(1001): flip(centre, list(range(30)))}
    assert await IMAGES.add_simhashes(redis_client, stale) == 0  # not over one it did not see (a rehash's, say)
    assert await IMAGES.add_simhashes(redis_client, stale, {md5(1001): codes[md5(1001)]}) == 1  # over a stale one
    assert (await IMAGES.near_any(redis_client, [(elsewhere,)], 10, [None], [centre]))[0] == []
    assert await IMAGES.add_simhashes(redis_client, {md5(5000): centre}) == 0  # not registered (removed meanwhile)
    assert await IMAGES.scan_simhashes(redis_client) == {
        **{m: c for m, c in codes.items() if m != md5(1000)},
        md5(1001): flip(centre, list(range(30))),
        md5(1002): ~centre & (2**64 - 1),
    }
    await IMAGES.remove(redis_client, list(phashes))
    assert [k async for k in redis_client.scan_iter(f"{keys.SIMHASH_CHUNKS}:*")] == []
    assert not await redis_client.exists(keys.SIMHASHES)


async def test_ingest_linking_measures_candidates_as_the_regroup_does(redis_client: Redis) -> None:
    # Each pair is linked at ingest as paktum_common.phash.match links it with both signatures.
    rng = random.Random(22)
    smooth, chance, lime = random_hash(rng), random_hash(rng), random_hash(rng)
    marks = {md5(1): signature(rng), md5(3): signature(rng), md5(5): signature(rng, hue=2)}
    marks[md5(2)] = signature(rng, marks[md5(1)], noise=3)  # the same picture, 20 bits away by pHash
    marks[md5(4)] = signature(rng)  # 10 bits from md5(3) by chance: the last bits need agreeing signatures
    marks[md5(6)] = signature(rng, marks[md5(5)], noise=3, hue=8)  # 3 bits from md5(5), of another colour
    phashes = {
        md5(1): smooth,
        md5(2): flip(smooth, rng.sample(range(64), 20)),
        md5(3): chance,
        md5(4): flip(chance, rng.sample(range(64), 10)),
        md5(5): lime,
        md5(6): flip(lime, [1, 2, 3]),
    }
    documents: dict[str, bytes] = {}

    async def signatures_of(md5s: list[str]) -> dict[str, bytes]:
        return {m: documents[m] for m in md5s if m in documents}

    for image in sorted(phashes):  # one at a time, the earlier ones read back as indexed documents
        await link_images(redis_client, {image: phashes[image]}, 10, signatures={image: marks[image]},
                          signatures_of=signatures_of)  # fmt: skip
        documents[image] = marks[image]
    related = await related_many(redis_client, list(phashes))
    for a, b in [(a, b) for a in phashes for b in phashes if a < b]:
        bits, _ = match(phashes[a], (), phashes[b], (), None, None, 10, (marks[a], marks[b]))
        assert ((b, bits) in related[a]) == (bits < NO_MATCH), (a, b)
    assert related[md5(1)] == [(md5(2), 20)] and related[md5(3)] == related[md5(5)] == []


async def test_a_grey_copy_joins_the_nearer_of_two_colours_and_does_not_merge_them(redis_client: Redis) -> None:
    rng = random.Random(23)
    centre = random_hash(rng)
    base = signature(rng)
    lime, lemon = signature(rng, base, 2, hue=3), signature(rng, base, 2, hue=1)  # alike but for their colour
    marks = {md5(1): lime, md5(2): signature(rng, lime, 2, 3), md5(3): lemon, md5(4): signature(rng, lemon, 2, 1)}
    marks[md5(5)] = signature(rng, base, 2)  # grey: agrees with both
    phashes = {
        md5(1): centre,
        md5(2): flip(centre, [60]),
        md5(3): flip(centre, [50, 51, 52]),
        md5(4): flip(centre, [50, 51, 52, 53]),
        md5(5): flip(centre, [0]),
    }
    documents: dict[str, bytes] = {}

    async def signatures_of(md5s: list[str]) -> dict[str, bytes]:
        return {m: documents[m] for m in md5s if m in documents}

    shapes = {m: Symmetry(False, (balanced(rng),)) for m in phashes}  # as every image hashed since hue marks
    for image in sorted(phashes):
        await link_images(redis_client, {image: phashes[image]}, 10, symmetry={image: shapes[image]},
                          signatures={image: marks[image]}, signatures_of=signatures_of)  # fmt: skip
        documents[image] = marks[image]
    related = await related_many(redis_client, list(phashes))
    assert [r for r, _ in related[md5(5)]] == [md5(1), md5(2)]  # the nearer colour's group, not both
    assert [r for r, _ in related[md5(3)]] == [md5(4)]
    group = VariantGroup.from_json(str(await redis_client.hget(keys.GROUP_MEMBERS, md5(1))))
    assert group.hues == {md5(1): lime[63:], md5(2): lime[63:]}  # the record keeps the coloured marks
    assert VariantGroup.from_json(group.to_json()) == group
    older = VariantGroup.around(md5(1), {md5(1): centre, md5(2): phashes[md5(2)]})  # a record from before hues
    assert VariantGroup.from_json(older.to_json()).hues == {}
    # Without a Symmetry (hashed before symmetric hashes) a member's record keeps no mark: readers from before hue
    # marks parse it as they always did.
    unshaped = VariantGroup.around(md5(1), {md5(1): centre}, hues={md5(1): lime[63:]})
    assert len(orjson.loads(unshaped.to_json())["members"][0]) == 3


async def test_an_image_linked_again_keeps_its_own_groups_colour(redis_client: Redis) -> None:
    # A lemon's group exists; a lime and a grey copy come in one batch. The lime joins the grey copy first, so when
    # the grey copy is linked it is in the lime's group already: that group's colour counts, and the nearer lemons
    # stay apart.
    rng = random.Random(24)
    centre, base = random_hash(rng), signature(rng)
    lemon, lime, grey = signature(rng, base, 2, 1), signature(rng, base, 2, 3), signature(rng, base, 2)
    marks = {md5(1): lemon, md5(2): signature(rng, lemon, 2, 1), md5(3): lime, md5(4): grey}
    phashes = {md5(1): flip(centre, [1]), md5(2): flip(centre, [2]), md5(3): flip(centre, [20, 21]), md5(4): centre}
    documents: dict[str, bytes] = {}

    async def signatures_of(md5s: list[str]) -> dict[str, bytes]:
        return {m: documents[m] for m in md5s if m in documents}

    shapes = {m: Symmetry(False, (balanced(rng),)) for m in phashes}
    for batch in ([md5(1), md5(2)], [md5(3), md5(4)]):
        await link_images(redis_client, {m: phashes[m] for m in batch}, 10, symmetry={m: shapes[m] for m in batch},
                          signatures={m: marks[m] for m in batch}, signatures_of=signatures_of)  # fmt: skip
        documents.update({m: marks[m] for m in batch})
    related = await related_many(redis_client, list(phashes))
    assert [r for r, _ in related[md5(1)]] == [md5(2)] and [r for r, _ in related[md5(4)]] == [md5(3)]
