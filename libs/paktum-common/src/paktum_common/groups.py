"""Variant groups in Redis: images whose pHashes differ in at most PAKTUM_VARIANT_DISTANCE bits, directly or
through an alternate (mirrored, rotated, flattened on the other background), or whose symmetric hashes are near
when one of them is symmetric: paktum_common.phash.match.

The cleanup job computes every group and replaces them all at once (`GroupsBuild`); the hasher links
each new image as it indexes it (`link_images`); the api reads them (`related_many`, `group_stats`);
admins separate two images for good (`mark_not_variants`). A group's ID is its anchor's md5: the
first image of the group, to which every member's stored distance refers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError, WatchError

from paktum_common import keys
from paktum_common.contracts import phash_from_hex, phash_to_hex
from paktum_common.errors import TransientError
from paktum_common.hues import hues_agree, kept_mark
from paktum_common.phash import (
    NO_MATCH,
    SYMMETRIC_DISTANCE,
    Symmetry,
    alternates_from_text,
    alternates_to_text,
    hues_of,
    is_degenerate,
    is_degenerate_symmetric,
    match,
    simhashes_of,
    symmetry_from_text,
    symmetry_to_text,
)
from paktum_common.registry import IMAGES, Entries

DEFAULT_DISTANCE = 10
# A killed cleanup run leaves its half-built keys behind; they expire on their own after this.
BUILD_TTL_SECONDS = 6 * 3600
# Concurrent writers (hashers, cleanup, admins) retry an optimistic transaction this often.
MAX_ATTEMPTS = 50


class GroupsBusyError(TransientError):
    """Concurrent writers kept changing the variant groups under an optimistic transaction: try again later."""


@dataclass(frozen=True)
class Member:
    md5: str
    phash: int
    distance: int  # to the group's anchor (paktum_common.phash.match: through any alternate of either)
    alternates: tuple[int, ...] = ()
    symmetry: Symmetry | None = None  # None: hashed before symmetric hashes were computed
    hues: bytes = b""  # its hue mark (paktum_common.hues); none for a grey one or one hashed before marks


@dataclass(frozen=True)
class VariantGroup:
    members: tuple[Member, ...]  # the anchor first, then nearest to it first

    @property
    def anchor(self) -> str:
        return self.members[0].md5

    @classmethod
    def around(
        cls,
        anchor: str,
        phashes: Mapping[str, int],
        alternates: Mapping[str, tuple[int, ...]] | None = None,
        symmetry: Mapping[str, Symmetry | None] | None = None,
        hues: Mapping[str, bytes] | None = None,
    ) -> VariantGroup:
        """The group of `phashes` anchored at `anchor` (one of them), each with its alternates, Symmetry and hue
        mark if given."""
        alts, shapes, marks = alternates or {}, symmetry or {}, hues or {}

        def member(md5: str) -> Member:
            return Member(md5, phashes[md5], 0, alts.get(md5, ()), shapes.get(md5), marks.get(md5, b""))

        origin = member(anchor)
        others = [member(md5) for md5 in phashes if md5 != anchor]
        placed = sorted(
            (dataclasses.replace(m, distance=member_match(origin, m)[0]) for m in others),
            key=lambda m: (m.distance, m.md5),
        )
        return cls((origin, *placed))

    @property
    def alternates(self) -> dict[str, tuple[int, ...]]:
        return {m.md5: m.alternates for m in self.members if m.alternates}

    @property
    def symmetry(self) -> dict[str, Symmetry]:
        return {m.md5: m.symmetry for m in self.members if m.symmetry is not None}

    @property
    def hues(self) -> dict[str, bytes]:
        return {m.md5: m.hues for m in self.members if m.hues}

    def to_json(self) -> str:
        """The one place a group becomes its Redis form: [md5, pHash, distance], then the alternates when it has
        some or a Symmetry, then its Symmetry when it has one, then its hue mark in hex when it has one and a
        Symmetry (every image hashed since hue marks has one; without, the record stays what readers from before hue
        marks parse)."""
        members = []
        for m in self.members:
            row: list[str | int] = [m.md5, phash_to_hex(m.phash), m.distance]
            if m.alternates or m.symmetry is not None:
                row.append(alternates_to_text(m.alternates))
            if m.symmetry is not None:
                row.append(symmetry_to_text(m.symmetry))
                if m.hues:
                    row.append(m.hues.hex())
            members.append(row)
        return json.dumps({"anchor": self.anchor, "members": members}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> VariantGroup:
        data = orjson.loads(text)
        return cls(
            tuple(
                Member(
                    m[0],
                    phash_from_hex(m[1]),
                    int(m[2]),
                    alternates_from_text(m[3]) if len(m) > 3 else (),
                    symmetry_from_text(m[4]) if len(m) > 4 and m[4] else None,
                    bytes.fromhex(m[5]) if len(m) > 5 else b"",
                )
                for m in data["members"]
            )
        )


def member_match(a: Member, b: Member) -> tuple[int, str]:
    """paktum_common.phash.match between two members: how near b is to a, and the transform from a to b."""
    return match(a.phash, a.alternates, b.phash, b.alternates, a.symmetry, b.symmetry)


@dataclass(frozen=True)
class GroupStats:
    groups: int  # groups now, including those the hasher formed since the last run
    largest: int  # figures of the last full run from here on
    grouped_images: int
    pairs: int
    seconds: float
    finished: float  # UNIX seconds; 0 when no run has finished
    distance: int


async def group_stats(redis: Redis) -> GroupStats:
    """Group figures for ServerStats and metrics."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hlen(keys.GROUP_MEMBERS)
        pipe.hgetall(keys.GROUP_STATS)
        count, stored = await pipe.execute()
    return GroupStats(
        groups=int(count),
        largest=int(stored.get("largest", 0)),
        grouped_images=int(stored.get("grouped_images", 0)),
        pairs=int(stored.get("pairs", 0)),
        seconds=float(stored.get("seconds", 0.0)),
        finished=float(stored.get("finished", 0.0)),
        distance=int(stored.get("distance", DEFAULT_DISTANCE)),
    )


# One atomic read for any number of IDs, given as one argument (space-separated): each ID's group record and,
# for an ID in a group, its "not variants" partners (KEYS[3] is their keys' prefix). One argument rather than
# one per ID, and the partners' keys made here rather than sent: encoding a hundred arguments was most of what
# a page of fifty images cost the client.
_RELATED_SCRIPT = """
local out = {}
local i = 0
for id in string.gmatch(ARGV[1], '%S+') do
  local group = redis.call('HGET', KEYS[1], id)
  local record = false
  if group then record = redis.call('HGET', KEYS[2], group) end
  i = i + 1
  if record then
    out[2 * i - 1] = record
    out[2 * i] = redis.call('SMEMBERS', KEYS[3] .. ':' .. id)
  else
    out[2 * i - 1] = ''
    out[2 * i] = false
  end
end
return out
"""
_RELATED_SHA = hashlib.sha1(_RELATED_SCRIPT.encode()).hexdigest()


@dataclass(frozen=True)
class Related:
    md5: str
    distance: int  # bits, through the transform
    transform: str  # paktum_common.phash.TRANSFORMS: how the related image shows this one ("mirror": mirrored)


# An image's related images follow from what Redis answered for it alone (its group's record, its "not variants"
# partners) and the distance asked for: remembered by that answer, so an image shown again (the same few queries
# come again and again) costs a lookup, not a parse and a distance per member. Keyed by content, never stale.
RELATED_SEEN_MAX = 8192
_RELATED_SEEN: dict[tuple[str, str, frozenset[str], int | None], tuple[Related, ...]] = {}


async def related_many(
    redis: Redis, ids: Sequence[str], max_distance: int | None = None
) -> dict[str, list[tuple[str, int]]]:
    """For each ID, the other members of its group as (ID, distance to it), nearest first: `related_details`
    without the transforms."""
    found = await related_details(redis, ids, max_distance)
    return {image_id: [(r.md5, r.distance) for r in related] for image_id, related in found.items()}


async def related_details(
    redis: Redis, ids: Sequence[str], max_distance: int | None = None
) -> dict[str, list[Related]]:
    """For each ID, the other members of its group with their distance to it and how they relate, nearest first.

    One round trip for all IDs, so a GraphQL page of images costs one call, not one per image.
    The distance is the least over the plain pHashes and every alternate (mirrored, rotated, other
    background) of one against the plain pHash of the other. `max_distance` keeps only members within
    that many bits of the image itself; None keeps the whole group (members linked through a chain may lie
    farther). Images marked "not variants" of an image are never among its related images.
    """
    # Group members are MD5 digests: an ID of anything but letters and digits (which would also split the
    # script's argument) is in no group.
    unique = [image_id for image_id in dict.fromkeys(ids) if image_id.isalnum()]
    if not unique:
        return {image_id: [] for image_id in ids}
    script_keys = (keys.GROUP_OF, keys.GROUP_MEMBERS, keys.NOT_VARIANTS_OF)
    argument = " ".join(unique)
    try:
        raw = await redis.evalsha(_RELATED_SHA, len(script_keys), *script_keys, argument)
    except NoScriptError:  # a restarted or flushed Redis: EVAL loads the script for the next calls
        raw = await redis.eval(_RELATED_SCRIPT, len(script_keys), *script_keys, argument)
    found: dict[str, list[Related]] = {}
    for index, image_id in enumerate(unique):
        record = raw[2 * index]
        if record:
            key = (record, image_id, frozenset(raw[2 * index + 1]), max_distance)
            related = _RELATED_SEEN.get(key)
            if related is None:
                if len(_RELATED_SEEN) >= RELATED_SEEN_MAX:
                    _RELATED_SEEN.clear()
                related = _RELATED_SEEN[key] = tuple(_related_in(VariantGroup.from_json(record), *key[1:]))
            found[image_id] = list(related)
    return {image_id: found.get(image_id, []) for image_id in ids}


def _related_in(
    group: VariantGroup, image_id: str, separated: frozenset[str], max_distance: int | None
) -> list[Related]:
    """The other members of `image_id`'s group but the separated ones, nearest first (within `max_distance`)."""
    own = next((m for m in group.members if m.md5 == image_id), None)
    if own is None:  # a record that no longer lists the image: treat as no group
        return []
    others = [
        Related(m.md5, *member_match(own, m)) for m in group.members if m.md5 != image_id and m.md5 not in separated
    ]
    if max_distance is not None:
        others = [item for item in others if item.distance <= max_distance]
    return sorted(others, key=lambda item: (item.distance, item.md5))


def close_pairs(
    phashes: Sequence[int],
    distance: int,
    block: int = 1024,
    alternates: Sequence[tuple[int, ...]] = (),
    symmetry: Sequence[Symmetry | None] = (),
) -> list[tuple[int, int]]:
    """Index pairs (i < j) that match as paktum_common.phash.match says, within `distance`: non-degenerate hashes,
    through the alternates of either when given (one tuple per hash), and, where both have a Symmetry (one per
    hash, if given) and either is symmetric, by symmetric hashes alone. For one group's members, not all images."""
    values = np.array(phashes, dtype=np.uint64)
    usable = np.array([not is_degenerate(int(h)) for h in phashes], dtype=bool)
    # Every alternate as a column; a missing or degenerate one is replaced by the plain hash, which adds nothing.
    width = max((len(a) for a in alternates), default=0)
    alts = np.tile(values[:, None], (1, width))
    for i, own in enumerate(alternates):
        for slot, alternate in enumerate(own):
            if not is_degenerate(alternate):
                alts[i, slot] = alternate
    shapes = list(symmetry) or [None] * values.size
    known = np.array([s is not None for s in shapes], dtype=bool)
    symmetric = np.array([s is not None and s.symmetric for s in shapes], dtype=bool)
    sym_width = max((len(s.hashes) for s in shapes if s is not None), default=0)
    # Symmetric hashes as columns, and which of them are usable.
    sym = np.zeros((values.size, sym_width), dtype=np.uint64)
    sym_usable = np.zeros((values.size, sym_width), dtype=bool)
    for i, shape in enumerate(shapes):
        for slot, value in enumerate(shape.hashes if shape is not None else ()):
            sym[i, slot], sym_usable[i, slot] = value, not is_degenerate_symmetric(value)
    sym_limit = min(SYMMETRIC_DISTANCE, distance)
    found: list[tuple[int, int]] = []
    for start in range(0, values.size, block):
        rows = slice(start, start + block)
        close = np.bitwise_count(values[rows, None] ^ values[None, :]) <= distance
        for slot in range(width):
            close |= np.bitwise_count(alts[rows, slot, None] ^ values[None, :]) <= distance
            close |= np.bitwise_count(values[rows, None] ^ alts[None, :, slot]) <= distance
        close &= usable[rows, None] & usable[None, :]
        by_symmetry = known[rows, None] & known[None, :] & (symmetric[rows, None] | symmetric[None, :])
        if by_symmetry.any():
            near = np.zeros_like(close)
            for p in range(sym_width):
                for q in range(sym_width):
                    both = sym_usable[rows, p, None] & sym_usable[None, :, q]
                    near |= both & (np.bitwise_count(sym[rows, p, None] ^ sym[None, :, q]) <= sym_limit)
            close = np.where(by_symmetry, near, close)
        for i, j in zip(*np.nonzero(close), strict=True):
            if start + i < j:
                found.append((int(start + i), int(j)))
    return found


def split_group(
    phashes: Mapping[str, int],
    distance: int,
    separated: Iterable[tuple[str, str]] = (),
    alternates: Mapping[str, tuple[int, ...]] | None = None,
    symmetry: Mapping[str, Symmetry] | None = None,
    hues: Mapping[str, bytes] | None = None,
) -> list[VariantGroup]:
    """The connected components (two or more images) of these images, without the separated pairs, each member
    with its alternates, Symmetry and hue mark as given.

    Each component keeps as anchor its first image in the mapping's order.
    """
    alts, shapes = alternates or {}, symmetry or {}
    md5s = list(phashes)
    forbidden = {_pair_key(a, b) for a, b in separated}
    parent = list(range(len(md5s)))

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    hashes = [phashes[m] for m in md5s]
    for i, j in close_pairs(
        hashes, distance, alternates=[alts.get(m, ()) for m in md5s], symmetry=[shapes.get(m) for m in md5s]
    ):
        if _pair_key(md5s[i], md5s[j]) not in forbidden:
            a, b = root(i), root(j)
            parent[max(a, b)] = min(a, b)
    components: dict[int, list[str]] = {}
    for index, md5 in enumerate(md5s):
        components.setdefault(root(index), []).append(md5)
    return [
        VariantGroup.around(members[0], {m: phashes[m] for m in members}, alts, shapes, hues)
        for members in components.values()
        if len(members) > 1
    ]


def _pair_key(a: str, b: str) -> str:
    return f"{a}:{b}" if a < b else f"{b}:{a}"


def _not_variants_key(md5: str) -> str:
    return f"{keys.NOT_VARIANTS_OF}:{md5}"


async def not_variant_pairs(redis: Redis) -> list[tuple[str, str]]:
    """Every "not variants" decision, as (a, b) with a < b."""
    pairs: list[tuple[str, str]] = []
    async for key in redis.sscan_iter(keys.NOT_VARIANTS, count=10_000):
        a, _, b = key.partition(":")
        pairs.append((a, b))
    return pairs


@dataclass(frozen=True)
class Separation:
    newly_marked: bool  # False: the decision was already recorded
    still_grouped: bool  # True: other images still link the two (they are never related to each other)


async def mark_not_variants(redis: Redis, a: str, b: str, distance: int | None = None) -> Separation:
    """Record that `a` and `b` are not variants, for good, and split their group now if that separates them.

    Every later cleanup run and the hasher's linking respect the decision; related images never show
    one as related to the other. `distance` defaults to the one the last full run used.
    """
    if a == b:
        raise ValueError("an image cannot be marked as not a variant of itself")
    async with redis.pipeline(transaction=True) as pipe:
        pipe.sadd(keys.NOT_VARIANTS, _pair_key(a, b))
        pipe.sadd(_not_variants_key(a), b)
        pipe.sadd(_not_variants_key(b), a)
        added, _, _ = await pipe.execute()
    if distance is None:
        distance = (await group_stats(redis)).distance
    groups = await _regroup(redis, [a, b], drop=(), distance=distance)
    still = any({a, b} <= {m.md5 for m in g.members} for g in groups)
    return Separation(newly_marked=bool(added), still_grouped=still)


async def remove_from_groups(redis: Redis, md5s: Iterable[str], distance: int | None = None) -> None:
    """Take these images out of their groups (purged or gone), splitting what only they held together."""
    drop = list(md5s)
    if drop:
        if distance is None:
            distance = (await group_stats(redis)).distance
        await _regroup(redis, drop, drop=drop, distance=distance)


async def _regroup(redis: Redis, touching: Sequence[str], drop: Sequence[str], distance: int) -> list[VariantGroup]:
    """Recompute the groups of `touching` without the `drop` images and the separated pairs."""
    dropped = set(drop)
    async with redis.pipeline(transaction=True) as pipe:
        for _ in range(MAX_ATTEMPTS):
            try:
                await pipe.watch(keys.GROUP_OF, keys.GROUP_MEMBERS)
                group_ids = {g for g in await pipe.hmget(keys.GROUP_OF, list(touching)) if g}
                if not group_ids:
                    await pipe.reset()
                    return []
                records = await pipe.hmget(keys.GROUP_MEMBERS, sorted(group_ids))
                old = [VariantGroup.from_json(str(r)) for r in records if r]
                phashes = {m.md5: m.phash for g in old for m in g.members if m.md5 not in dropped}
                alternates = {md5: alts for g in old for md5, alts in g.alternates.items()}
                shapes = {md5: shape for g in old for md5, shape in g.symmetry.items()}
                marks = {md5: mark for g in old for md5, mark in g.hues.items()}
                separated = await _separated_among(redis, list(phashes))
                new = split_group(phashes, distance, separated, alternates, shapes, marks)
                pipe.multi()
                pipe.hdel(keys.GROUP_MEMBERS, *group_ids)
                grouped = {m.md5 for g in new for m in g.members}
                alone = [m.md5 for g in old for m in g.members if m.md5 not in grouped]
                if alone:
                    pipe.hdel(keys.GROUP_OF, *alone)
                _write_groups(pipe, keys.GROUP_OF, keys.GROUP_MEMBERS, new)
                await pipe.execute()
                return new
            except WatchError:
                continue
    raise GroupsBusyError("variant groups kept changing under a regroup; giving up")


async def _separated_among(redis: Redis, md5s: Sequence[str]) -> list[tuple[str, str]]:
    """The "not variants" pairs whose both images are among `md5s`, in one round trip.

    Read outside the caller's WATCH: decisions are only ever added, and each new one regroups itself.
    """
    if not md5s:
        return []
    inside = set(md5s)
    async with redis.pipeline(transaction=False) as reader:
        for md5 in md5s:
            reader.smembers(_not_variants_key(md5))
        partner_sets = await reader.execute()
    return [(m, p) for m, partners in zip(md5s, partner_sets, strict=True) for p in partners if p in inside]


def _write_groups(pipe: Pipeline, of_key: str, members_key: str, groups: Sequence[VariantGroup]) -> None:
    if groups:
        pipe.hset(members_key, mapping={g.anchor: g.to_json() for g in groups})
        pipe.hset(of_key, mapping={m.md5: g.anchor for g in groups for m in g.members})


SignatureReader = Callable[[list[str]], Awaitable[Mapping[str, bytes]]]
# Registered images a new image is measured against (its nearest by the registry's lookup), at most.
LINK_CANDIDATES = 1000


async def link_images(
    redis: Redis,
    images: Mapping[str, int],
    distance: int,
    alternates: Mapping[str, tuple[int, ...]] | None = None,
    symmetry: Mapping[str, Symmetry | None] | None = None,
    signatures: Mapping[str, bytes] | None = None,
    signatures_of: SignatureReader | None = None,
) -> int:
    """Register newly indexed images and join each to the groups of the images it links to at `distance`.

    Called by the hasher right after an index write, so related images appear without waiting for
    the next cleanup run (which remains the full recomputation). A new image's alternates (mirrored,
    rotated, other background) are queried with its plain pHash, against the registered plain pHashes, its
    symmetric hashes against the registered ones, and its signature's SimHash against theirs, in the one round
    trip that finds candidates. Each candidate (its LINK_CANDIDATES nearest) is then measured by
    paktum_common.phash.match with both `signatures` (the new images'; the registered ones' read through
    `signatures_of`, one call for the batch), as the regroup links them; without signatures, a pair links within
    the distance as it always did. Returns how many images joined a group.
    """
    if not images:
        return 0
    alts, shapes, marks = dict(alternates or {}), dict(symmetry or {}), dict(signatures or {})
    codes = simhashes_of({md5: marks[md5] for md5 in images if md5 in marks})
    # Register first: two hashers indexing near images at once then each find the other.
    await IMAGES.add(redis, images, alts, shapes, codes)
    md5s = list(images)
    queries = [(images[m], *alts.get(m, ())) for m in md5s]
    found = await IMAGES.near_any(redis, queries, distance, [shapes.get(m) for m in md5s], [codes.get(m) for m in md5s])
    nearest = [
        [other for other, _ in near if other != md5][:LINK_CANDIDATES] for md5, near in zip(md5s, found, strict=True)
    ]
    candidates = sorted({other for near in nearest for other in near})
    stored = await IMAGES.entries(redis, candidates)
    unread = [md5 for md5 in candidates if md5 not in marks]
    if signatures_of is not None and unread:
        marks.update(await signatures_of(unread))
    joined = 0
    for md5, near in zip(md5s, nearest, strict=True):
        own = Member(md5, images[md5], 0, alts.get(md5, ()), shapes.get(md5), kept_mark(hues_of(marks.get(md5, b""))))
        links = _measured(own, near, stored, marks, distance)
        hues = {other: kept_mark(hues_of(marks.get(other, b""))) for other in links}
        if links and await _join(redis, own, links, stored, hues):
            joined += 1
    return joined


def _measured(
    own: Member, near: Sequence[str], stored: Entries, marks: Mapping[str, bytes], distance: int
) -> dict[str, int]:
    """The candidates `own` links to at `distance` (paktum_common.phash.match), with the distance it links at."""
    links: dict[str, int] = {}
    mark = marks.get(own.md5, b"")
    for other in near:
        if other not in stored.phashes:
            continue  # removed since it was found
        bits, _ = match(
            own.phash,
            own.alternates,
            stored.phashes[other],
            stored.alternates.get(other, ()),
            own.symmetry,
            stored.shapes.get(other),
            distance,
            (mark, marks.get(other, b"")),
        )
        if bits < NO_MATCH:
            links[other] = bits
    return links


def _unbridged(
    own: bytes,
    own_group: str,
    near: Mapping[str, int],
    group_of: Mapping[str, str],
    groups: Mapping[str, VariantGroup],
    hues: Mapping[str, bytes],
) -> set[str]:
    """The linked images whose groups a new image (hue mark `own`, in group `own_group` already or "") joins: those
    of its own group, then each part (another group, or a linked image in none), nearest link first, whose members'
    hue marks all agree with those of its own group, of every part taken before it and with `own`. A grey copy that
    links to a lime's wedge and to a lemon's joins the nearer one's group and does not merge the two
    (paktum_cleanup.bridges splits such a group at the next cleanup)."""
    parts: dict[str, list[str]] = {}
    for other in sorted(near, key=lambda o: (near[o], o)):
        parts.setdefault(group_of.get(other, other), []).append(other)
    taken = [own] if own else []
    if own_group in groups:
        taken += groups[own_group].hues.values()
    kept = set(parts.pop(own_group, []))
    for part, linked in parts.items():
        group = groups.get(part)
        marks = list(group.hues.values()) if group is not None else []
        marks += [hues[other] for other in linked if hues.get(other)]
        if all(hues_agree(a, b) for a in marks for b in taken):
            taken += marks
            kept.update(linked)
    return kept


async def _join(redis: Redis, own: Member, near: Mapping[str, int], stored: Entries, hues: Mapping[str, bytes]) -> bool:
    md5 = own.md5
    separated = await redis.smembers(_not_variants_key(md5))
    near = {other: bits for other, bits in near.items() if other not in separated}
    if not near:
        return False
    async with redis.pipeline(transaction=True) as pipe:
        for _ in range(MAX_ATTEMPTS):
            try:
                await pipe.watch(keys.GROUP_OF, keys.GROUP_MEMBERS)
                candidates = list(near)
                of = await pipe.hmget(keys.GROUP_OF, [md5, *candidates])
                group_of = {other: str(g) for other, g in zip(candidates, of[1:], strict=True) if g}
                group_ids = sorted({*group_of.values(), *([str(of[0])] if of[0] else [])})
                records = await pipe.hmget(keys.GROUP_MEMBERS, group_ids) if group_ids else []
                groups = {g.anchor: g for g in (VariantGroup.from_json(str(r)) for r in records if r)}
                kept = _unbridged(own.hues, str(of[0] or ""), near, group_of, groups, hues)
                joined = {group_of[other] for other in kept if other in group_of} | ({str(of[0])} if of[0] else set())
                # The largest group keeps its anchor; without one, the nearest image that was there first.
                old = sorted((groups[g] for g in joined if g in groups), key=lambda g: (-len(g.members), g.anchor))
                phashes: dict[str, int] = {}
                member_alternates = {other: stored.alternates[other] for other in kept if other in stored.alternates}
                member_symmetry: dict[str, Symmetry | None] = {
                    other: stored.shapes[other] for other in kept if other in stored.shapes
                }
                member_hues = {other: hues[other] for other in kept if hues.get(other)}
                for group in old:
                    phashes.update({m.md5: m.phash for m in group.members})
                    member_alternates.update(group.alternates)
                    member_symmetry.update(group.symmetry)
                    member_hues.update(group.hues)
                nearest_first = sorted(kept, key=lambda other: (near[other], other))
                phashes.update({other: stored.phashes[other] for other in nearest_first})
                phashes[md5] = own.phash
                if own.alternates:
                    member_alternates[md5] = own.alternates
                if own.symmetry is not None:
                    member_symmetry[md5] = own.symmetry
                if own.hues:
                    member_hues[md5] = own.hues
                anchor = old[0].anchor if old else next(iter(phashes))
                if anchor == md5:  # no neighbour is registered any more
                    await pipe.reset()
                    return False
                group = VariantGroup.around(anchor, phashes, member_alternates, member_symmetry, member_hues)
                pipe.multi()
                stale = [g.anchor for g in old if g.anchor != anchor]
                if stale:
                    pipe.hdel(keys.GROUP_MEMBERS, *stale)
                _write_groups(pipe, keys.GROUP_OF, keys.GROUP_MEMBERS, [group])
                await pipe.execute()
                return True
            except WatchError:
                continue
    raise GroupsBusyError("variant groups kept changing while linking an image; giving up")


class GroupsBuild:
    """A full run's groups, written under keys of their own and swapped in only when complete.

    Until `publish`, readers see the previous groups untouched; a run that dies leaves only its
    build keys, which expire.
    """

    def __init__(self, redis: Redis, run_id: str) -> None:
        self.redis = redis
        self.of_key = f"{keys.GROUPS_BUILD}:{run_id}:of"
        self.members_key = f"{keys.GROUPS_BUILD}:{run_id}:members"
        self.stats_key = f"{keys.GROUPS_BUILD}:{run_id}:stats"

    async def add(self, groups: Sequence[VariantGroup]) -> None:
        if not groups:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            _write_groups(pipe, self.of_key, self.members_key, groups)
            pipe.expire(self.of_key, BUILD_TTL_SECONDS)
            pipe.expire(self.members_key, BUILD_TTL_SECONDS)
            await pipe.execute()

    async def publish(self, stats: Mapping[str, int | float]) -> None:
        """Replace the live groups and stats with this build in one transaction."""
        figures = {key: str(value) for key, value in {**stats, "finished": time.time()}.items()}
        await self.redis.hset(self.stats_key, mapping=figures)  # type: ignore[arg-type]
        built = await self.redis.exists(self.of_key, self.members_key)
        async with self.redis.pipeline(transaction=True) as pipe:
            if built:
                pipe.rename(self.of_key, keys.GROUP_OF)
                pipe.rename(self.members_key, keys.GROUP_MEMBERS)
                pipe.persist(keys.GROUP_OF)
                pipe.persist(keys.GROUP_MEMBERS)
            else:  # no groups at all this run
                pipe.delete(keys.GROUP_OF, keys.GROUP_MEMBERS)
            pipe.rename(self.stats_key, keys.GROUP_STATS)
            await pipe.execute()

    async def discard(self) -> None:
        await self.redis.delete(self.of_key, self.members_key, self.stats_key)
