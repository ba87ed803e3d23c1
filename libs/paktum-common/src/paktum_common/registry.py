"""pHash registries in Redis (indexed images, purged images) with chunk tables to find near hashes fast.

A hash is split into 4 chunks of 16 bits. Write the distance d = 4r + a (0 <= a < 4): two hashes within
d bits differ in at most r bits on one of the first a + 1 chunks, or in at most r - 1 on one of the
others (otherwise the chunks alone would add up to more than d). So a lookup reads only the chunk sets
within each chunk's radius of the query's chunk values, and checks the full distance exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from paktum_common import keys
from paktum_common.contracts import phash_from_hex, phash_to_hex
from paktum_common.phash import (
    ALL_SLOTS,
    ALTERNATE_PENALTY,
    PRIMARY_SLOTS,
    SIMHASH_DISTANCE,
    SYMMETRIC_DISTANCE,
    Symmetry,
    alternate_distance,
    alternates_from_text,
    alternates_to_text,
    hamming,
    is_degenerate,
    is_degenerate_symmetric,
    symmetry_from_text,
    symmetry_to_text,
)

T = TypeVar("T")
CHUNKS = 4
CHUNK_BITS = 16
CHUNK_VALUES = 1 << CHUNK_BITS


def chunk_radii(distance: int) -> list[int]:
    """Each chunk's search radius for `distance` (-1: that chunk need not be searched)."""
    radius, extra = divmod(distance, CHUNKS)
    return [radius if chunk <= extra else radius - 1 for chunk in range(CHUNKS)]


@cache
def chunk_masks(radius: int) -> tuple[int, ...]:
    """Every 16-bit XOR mask with at most `radius` bits set, the empty mask first."""
    masks = [0]
    for bits in range(1, min(radius, CHUNK_BITS) + 1):
        for combo in itertools.combinations(range(CHUNK_BITS), bits):
            masks.append(sum(1 << b for b in combo))
    return tuple(masks)


def chunk_value(phash: int, chunk: int) -> int:
    return (phash >> (chunk * CHUNK_BITS)) & (CHUNK_VALUES - 1)


# add_simhashes, for each (md5, the SimHash seen or "", the new one) after the prefix and the number of chunks, in
# hex: only for an image still registered whose SimHash is still the one seen, the old one's chunk members removed
# and the new one entered, as _in_chunks and _chunk_key spell them (chunk c is the c-th 4 hex digits from the right).
_ADD_SIMHASHES_SCRIPT = """
local prefix, chunks, entered = ARGV[1], tonumber(ARGV[2]), 0
local function members(command, md5, code)
  for c = 0, chunks - 1 do
    local last = 16 - 4 * c
    redis.call(command, prefix .. ':' .. c .. ':' .. string.sub(code, last - 3, last), md5 .. ':' .. code)
  end
end
for i = 3, #ARGV, 3 do
  local md5, seen, code = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local old = redis.call('HGET', KEYS[2], md5) or ''
  if old == seen and redis.call('HEXISTS', KEYS[1], md5) == 1 then
    if old ~= '' then members('SREM', md5, old) end
    redis.call('HSET', KEYS[2], md5, code)
    members('SADD', md5, code)
    entered = entered + 1
  end
end
return entered
"""


def _member(md5: str, value: int) -> str:
    return f"{md5}:{phash_to_hex(value)}"


def _chunk_key(prefix: str, chunk: int, value: int) -> str:
    return f"{prefix}:{chunk}:{value:04x}"


def _chunk_keys(prefix: str, value: int) -> list[str]:
    """The chunk sets a hash is a member of."""
    return [_chunk_key(prefix, chunk, chunk_value(value, chunk)) for chunk in range(CHUNKS)]


def _in_chunks(command: Callable[..., object], prefix: str, md5: str, value: int) -> None:
    """Queue `command` (a pipeline's sadd or srem) of one image's hash on each chunk set of a table."""
    for key in _chunk_keys(prefix, value):
        command(key, _member(md5, value))


def _other_background(alternates: tuple[int, ...]) -> int | None:
    """A transparent image's pHash flattened on its other background (the first of its second background's
    slots), when it has one that can link."""
    if len(alternates) != ALL_SLOTS or is_degenerate(alternates[PRIMARY_SLOTS]):
        return None
    return alternates[PRIMARY_SLOTS]


def _usable_symmetric(symmetry: Symmetry | None) -> tuple[int, ...]:
    return tuple(h for h in symmetry.hashes if not is_degenerate_symmetric(h)) if symmetry else ()


class Entries(NamedTuple):
    """What a registry holds of some images (of those that have each)."""

    phashes: dict[str, int]
    alternates: dict[str, tuple[int, ...]]
    shapes: dict[str, Symmetry]
    simhashes: dict[str, int]


@dataclass(frozen=True)
class PhashRegistry:
    """md5 -> pHash in one Redis hash, plus chunk tables over the non-degenerate hashes, plus (when it has an
    `alternates_key`) md5 -> the image's alternate pHashes, which are looked up but never in the chunk tables:
    a new image's alternates are queried against the plain hashes, which is enough to find a mirrored pair.

    With a `symmetry_key`, also md5 -> the image's Symmetry, and two chunk tables over symmetric hashes: those of
    the images that are not symmetric (`symmetric_prefix`) and of those that are (`symmetric_only_prefix`). A
    symmetric image's pHash is left out of the plain chunk tables: a pair with a symmetric side is matched by
    symmetric hashes alone (paktum_common.phash.match), so a symmetric image asks both symmetric tables, another
    image the plain tables and the symmetric images' table.

    With an `other_prefix` (and an `alternates_key`, which remove() reads it back from), one more chunk table over
    each transparent image's pHash on its other background, asked by every image that is not symmetric: an opaque
    copy flattened on that background has no alternate near the image's plain hash, only its own plain hash near
    that one of the image's alternates.

    With a `simhash_key` and `simhash_prefix`, also md5 -> the SimHash of the image's signature
    (paktum_common.phash.simhash_of) and a chunk table over them, for the images that are not symmetric: a lookup
    given a picture's SimHash also finds the images within SIMHASH_DISTANCE of it, candidates for signature
    neighbours (phash.signature_neighbours), which the caller measures with phash.match."""

    hash_key: str
    chunk_prefix: str
    alternates_key: str = ""
    symmetry_key: str = ""
    symmetric_prefix: str = ""
    symmetric_only_prefix: str = ""
    other_prefix: str = ""
    simhash_key: str = ""
    simhash_prefix: str = ""

    def _symmetric_table(self, shape: Symmetry | None) -> str:
        """The chunk table an image's symmetric hashes are in."""
        return self.symmetric_only_prefix if shape is not None and shape.symmetric else self.symmetric_prefix

    async def add(
        self,
        redis: Redis,
        images: Mapping[str, int],
        alternates: Mapping[str, tuple[int, ...]] | None = None,
        symmetry: Mapping[str, Symmetry | None] | None = None,
        simhashes: Mapping[str, int] | None = None,
    ) -> None:
        if not images:
            return
        async with redis.pipeline(transaction=True) as pipe:
            self._queue_add(pipe, images, alternates or {}, symmetry or {}, simhashes or {})
            await pipe.execute()

    async def replace(
        self,
        redis: Redis,
        images: Mapping[str, int],
        alternates: Mapping[str, tuple[int, ...]],
        symmetry: Mapping[str, Symmetry | None],
        simhashes: Mapping[str, int] | None = None,
    ) -> list[str]:
        """Registered images' hashes replaced by new ones (a rehash), every old chunk entry gone, in one
        transaction: no lookup sees an image half replaced, and a crash leaves the old entries or the new. An
        image no longer registered (removed meanwhile) is left out; returns the md5s replaced."""
        old = await self.entries(redis, list(images))
        present = {md5: phash for md5, phash in images.items() if md5 in old.phashes}
        if not present:
            return []
        async with redis.pipeline(transaction=True) as pipe:
            self._queue_remove(pipe, list(present), old)
            self._queue_add(pipe, present, alternates, symmetry, simhashes or {})
            await pipe.execute()
        return list(present)

    def _queue_add(
        self,
        pipe: Pipeline,
        images: Mapping[str, int],
        alternates: Mapping[str, tuple[int, ...]],
        symmetry: Mapping[str, Symmetry | None],
        simhashes: Mapping[str, int],
    ) -> None:
        extra = {md5: alternates_to_text(alts) for md5, alts in alternates.items() if alts and md5 in images}
        shapes = {md5: s for md5, s in symmetry.items() if s is not None and md5 in images}
        if not self.symmetry_key:
            shapes = {}
        if self.simhash_key:
            self._queue_simhashes(pipe, {md5: code for md5, code in simhashes.items() if md5 in images}, shapes)
        pipe.hset(self.hash_key, mapping={md5: phash_to_hex(ph) for md5, ph in images.items()})
        if extra and self.alternates_key:
            pipe.hset(self.alternates_key, mapping=extra)  # type: ignore[arg-type]
        if shapes:
            pipe.hset(self.symmetry_key, mapping={md5: symmetry_to_text(s) for md5, s in shapes.items()})
        for md5, phash in images.items():
            shape = shapes.get(md5)
            other = _other_background(alternates.get(md5, ())) if self.other_prefix else None
            if shape is not None and shape.symmetric:
                _in_chunks(pipe.srem, self.chunk_prefix, md5, phash)  # registered before it was known symmetric
                if other is not None:
                    _in_chunks(pipe.srem, self.other_prefix, md5, other)
            else:
                if not is_degenerate(phash):
                    _in_chunks(pipe.sadd, self.chunk_prefix, md5, phash)
                if other is not None:
                    _in_chunks(pipe.sadd, self.other_prefix, md5, other)
            table = self._symmetric_table(shape)
            for value in _usable_symmetric(shape):
                _in_chunks(pipe.sadd, table, md5, value)

    def _queue_simhashes(
        self, pipe: Pipeline, simhashes: Mapping[str, int], shapes: Mapping[str, Symmetry | None]
    ) -> None:
        """Enter the SimHashes of images that are not symmetric in their hash and chunk table. A symmetric image has
        no signature neighbours (phash.signature_neighbours): its SimHash is kept out of both (and taken out of the
        table, had it been registered before it was known symmetric)."""
        symmetric = {md5 for md5, shape in shapes.items() if shape is not None and shape.symmetric}
        kept = {md5: code for md5, code in simhashes.items() if md5 not in symmetric}
        if kept:
            pipe.hset(self.simhash_key, mapping={md5: phash_to_hex(code) for md5, code in kept.items()})
        for md5, code in simhashes.items():
            _in_chunks(pipe.srem if md5 in symmetric else pipe.sadd, self.simhash_prefix, md5, code)

    async def add_simhashes(
        self, redis: Redis, simhashes: Mapping[str, int], seen: Mapping[str, int] | None = None
    ) -> int:
        """Enter registered images' SimHashes (of images that are not symmetric, registered before the SimHash
        table existed or whose entry is wrong) in place of the one `seen` for each (none when absent). Atomic for
        each image: one removed meanwhile (no pHash entry any more), or whose SimHash is no longer the one seen (a
        rehash's replace() since), is left as it is, so no entry outlives its image and none is written over a newer
        one. Returns how many were entered."""
        if not self.simhash_key or not simhashes:
            return 0
        before = seen or {}
        triples = [
            text
            for md5, code in simhashes.items()
            for text in (md5, phash_to_hex(before[md5]) if md5 in before else "", phash_to_hex(code))
        ]
        entered = await redis.eval(
            _ADD_SIMHASHES_SCRIPT, 2, self.hash_key, self.simhash_key, self.simhash_prefix, CHUNKS, *triples
        )
        return int(entered)

    async def scan_simhashes(self, redis: Redis, count: int = 10_000) -> dict[str, int]:
        """Every stored SimHash, read in pieces."""
        return await _scan(redis, self.simhash_key, phash_from_hex, count)

    async def add_other_backgrounds(self, redis: Redis, others: Mapping[str, int]) -> int:
        """Enter images' pHash on their other background (alternate slot PRIMARY_SLOTS) in its table, for images
        registered before it existed; the caller leaves symmetric ones out. Returns how many could link."""
        usable = {md5: other for md5, other in others.items() if not is_degenerate(other)}
        if not self.other_prefix or not usable:
            return 0
        async with redis.pipeline(transaction=False) as pipe:
            for md5, other in usable.items():
                _in_chunks(pipe.sadd, self.other_prefix, md5, other)
            await pipe.execute()
        return len(usable)

    async def remove(self, redis: Redis, md5s: Iterable[str]) -> int:
        """Forget these images; returns how many were registered."""
        md5s = list(md5s)
        if not md5s:
            return 0
        old = await self.entries(redis, md5s)
        async with redis.pipeline(transaction=True) as pipe:
            self._queue_remove(pipe, md5s, old)
            await pipe.execute()
        return len(old.phashes)

    def _queue_remove(self, pipe: Pipeline, md5s: list[str], old: Entries) -> None:
        """The commands that forget these images, given what entries() read of them."""
        pipe.hdel(self.hash_key, *md5s)
        for key in (self.alternates_key, self.symmetry_key, self.simhash_key):
            if key:
                pipe.hdel(key, *md5s)
        for md5, phash in old.phashes.items():
            _in_chunks(pipe.srem, self.chunk_prefix, md5, phash)
        for md5, shape in old.shapes.items():
            for value in _usable_symmetric(shape):
                _in_chunks(pipe.srem, self._symmetric_table(shape), md5, value)
        for md5, alts in old.alternates.items() if self.other_prefix else ():
            other = _other_background(alts)
            if other is not None:
                _in_chunks(pipe.srem, self.other_prefix, md5, other)
        for md5, code in old.simhashes.items():
            _in_chunks(pipe.srem, self.simhash_prefix, md5, code)

    async def get(self, redis: Redis, md5s: Sequence[str]) -> dict[str, int]:
        if not md5s:
            return {}
        stored = await redis.hmget(self.hash_key, list(md5s))
        return {md5: phash_from_hex(str(h)) for md5, h in zip(md5s, stored, strict=True) if h is not None}

    async def stored(
        self, redis: Redis, md5s: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, tuple[int, ...]], dict[str, Symmetry]]:
        """The stored pHash, alternates and Symmetry of these images (of those that have them), in one round trip."""
        entries = await self.entries(redis, md5s)
        return entries.phashes, entries.alternates, entries.shapes

    async def entries(self, redis: Redis, md5s: Sequence[str]) -> Entries:
        """Everything stored of these images, in one round trip."""
        if not md5s:
            return Entries({}, {}, {}, {})
        ids = list(md5s)
        fields = [self.hash_key, self.alternates_key, self.symmetry_key, self.simhash_key]
        async with redis.pipeline(transaction=False) as pipe:
            for key in fields:
                if key:
                    pipe.hmget(key, ids)
            replies = await pipe.execute()
        phashes, alternates, shapes, codes = (
            {md5: str(v) for md5, v in zip(ids, replies.pop(0), strict=True) if v} if key else {} for key in fields
        )
        return Entries(
            {md5: phash_from_hex(h) for md5, h in phashes.items()},
            {md5: alternates_from_text(t) for md5, t in alternates.items()},
            {md5: symmetry_from_text(t) for md5, t in shapes.items()},
            {md5: phash_from_hex(c) for md5, c in codes.items()},
        )

    async def scan(self, redis: Redis, count: int = 10_000) -> dict[str, int]:
        """The whole registry, read in pieces so Redis is never blocked for long."""
        return await _scan(redis, self.hash_key, phash_from_hex, count)

    async def scan_symmetry(self, redis: Redis, count: int = 10_000) -> dict[str, Symmetry]:
        """Every stored Symmetry, read in pieces."""
        return await _scan(redis, self.symmetry_key, symmetry_from_text, count)

    async def near(self, redis: Redis, phashes: Sequence[int], distance: int) -> list[list[tuple[str, int]]]:
        """For each query hash, the registered images within `distance` bits as (md5, distance), nearest first.

        A degenerate query finds nothing: such hashes never link. One round trip for all queries.
        """
        return await self._near(redis, [(phash, distance, self.chunk_prefix) for phash in phashes])

    async def _near(self, redis: Redis, queries: Sequence[tuple[int, int, str]]) -> list[list[tuple[str, int]]]:
        """near() with a distance and a chunk table (prefix) of its own for each query hash (at least 0)."""
        async with redis.pipeline(transaction=False) as pipe:
            for phash, distance, prefix in queries:
                radii = chunk_radii(distance)
                chunk_keys = [
                    _chunk_key(prefix, chunk, chunk_value(phash, chunk) ^ mask)
                    for chunk in range(CHUNKS)
                    if radii[chunk] >= 0
                    for mask in chunk_masks(radii[chunk])
                ]
                pipe.sunion(chunk_keys)
            candidates = await pipe.execute()
        found: list[list[tuple[str, int]]] = []
        for (phash, distance, prefix), members in zip(queries, candidates, strict=True):
            close: list[tuple[str, int]] = []
            symmetric = prefix in (self.symmetric_prefix, self.symmetric_only_prefix)
            degenerate = is_degenerate_symmetric if symmetric else is_degenerate
            if prefix == self.simhash_prefix or not degenerate(phash):  # simhash_of gives no degenerate one
                for member in members:
                    md5, _, hex_hash = member.partition(":")
                    bits = hamming(phash, int(hex_hash, 16))
                    if bits <= distance:
                        close.append((md5, bits))
            found.append(sorted(close, key=lambda item: (item[1], item[0])))
        return found

    async def near_any(
        self,
        redis: Redis,
        queries: Sequence[Sequence[int]],
        distance: int,
        symmetry: Sequence[Symmetry | None] = (),
        simhashes: Sequence[int | None] = (),
    ) -> list[list[tuple[str, int]]]:
        """For each image given as its query hashes (the plain pHash first, then its alternates), its Symmetry and
        its SimHash (one of each per image, or none at all), the registered images it may match as
        paktum_common.phash.match does, as (md5, least distance), nearest first. Through the pHashes: within
        `distance` bits of its plain hash or alternate_distance(distance) of an alternate, which counts its bits
        plus ALTERNATE_PENALTY. Through the symmetric hashes, when the image or the registered one is symmetric:
        within SYMMETRIC_DISTANCE (and the distance). Through the SimHashes, when neither is symmetric: within
        SIMHASH_DISTANCE, at distance + 1 (beyond the pHashes' finds) when found no other way: a candidate for
        signature neighbours, which only match() with both signatures can tell. One round trip."""
        shapes = list(symmetry) or [None] * len(queries)
        codes = list(simhashes) or [None] * len(queries)
        per_image = [
            self._image_queries(hashes, shape, code, distance)
            for hashes, shape, code in zip(queries, shapes, codes, strict=True)
        ]
        found = await self._near(redis, [(h, limit, prefix) for usable in per_image for h, limit, prefix, _ in usable])
        results: list[list[tuple[str, int]]] = []
        position = 0
        for usable in per_image:
            best: dict[str, int] = {}
            for _, _, _, penalty in usable:
                for md5, bits in found[position]:
                    rank = distance + 1 if penalty is None else bits + penalty
                    best[md5] = min(rank, best.get(md5, rank))
                position += 1
            results.append(sorted(best.items(), key=lambda item: (item[1], item[0])))
        return results

    def _image_queries(
        self, hashes: Sequence[int], shape: Symmetry | None, simhash: int | None, distance: int
    ) -> list[tuple[int, int, str, int | None]]:
        """(hash, how near it must come, chunk table, bits added to what it finds; None: a SimHash's find) for one
        image."""
        queries: list[tuple[int, int, str, int | None]] = []
        if self.simhash_prefix and simhash is not None and not (shape is not None and shape.symmetric):
            queries.append((simhash, SIMHASH_DISTANCE, self.simhash_prefix, None))
        if shape is not None and self.symmetry_key:
            limit = min(SYMMETRIC_DISTANCE, distance)
            tables = [self.symmetric_only_prefix, *([self.symmetric_prefix] if shape.symmetric else [])]
            queries += [(value, limit, table, 0) for value in _usable_symmetric(shape) for table in tables]
            if shape.symmetric:
                return queries
        usable = _usable_queries(hashes, distance)
        queries += [(h, limit, self.chunk_prefix, distance - limit) for h, limit in usable]
        through = alternate_distance(distance)
        if self.other_prefix and usable and through >= 0:
            # Its plain pHash against a transparent image's on the other background (the stored side's alternate,
            # so it counts as through one). Its own alternates are not asked there: a mirrored copy on black is
            # rare, and those 7 more lookups cost as much as all the others (bench/registry.py); the regroup finds it.
            queries.append((usable[0][0], through, self.other_prefix, ALTERNATE_PENALTY))
        return queries


async def _scan(redis: Redis, key: str, parse: Callable[[str], T], count: int) -> dict[str, T]:
    """md5 -> parsed value of a whole Redis hash (none when `key` is ""), read `count` at a time."""
    found: dict[str, T] = {}
    if key:
        async for md5, text in redis.hscan_iter(key, count=count):
            found[str(md5)] = parse(str(text))
    return found


def _usable_queries(hashes: Sequence[int], distance: int) -> list[tuple[int, int]]:
    """(hash, how near it must come) for the plain pHash and each alternate that can find something.

    An image whose plain hash is degenerate never links (paktum_common.phash.match), whatever its alternates.
    An alternate within ALTERNATE_PENALTY bits of the plain hash finds nothing the plain hash does not, at no
    less a distance (the triangle inequality), so it is not asked."""
    if not hashes or is_degenerate(hashes[0]):
        return []
    plain, through = hashes[0], alternate_distance(distance)
    usable = [(plain, distance)]
    if through >= 0:
        usable += [(h, through) for h in hashes[1:] if not is_degenerate(h) and hamming(h, plain) > ALTERNATE_PENALTY]
    return usable


IMAGES = PhashRegistry(
    keys.PHASHES,
    keys.PHASH_CHUNKS,
    keys.PHASH_ALTERNATES,
    keys.PHASH_SYMMETRY,
    keys.SYMMETRIC_CHUNKS,
    keys.SYMMETRIC_ONLY_CHUNKS,
    keys.OTHER_BACKGROUND_CHUNKS,
    keys.SIMHASHES,
    keys.SIMHASH_CHUNKS,
)
PURGED = PhashRegistry(
    keys.PURGED_PHASHES,
    keys.PURGED_CHUNKS,
    "",
    keys.PURGED_SYMMETRY,
    keys.PURGED_SYMMETRIC_CHUNKS,
    keys.PURGED_SYMMETRIC_ONLY_CHUNKS,
)
