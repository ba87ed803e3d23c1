"""The catalog: the one owner of an image. It admits, stores, indexes and removes images, and answers
"do we have it" and "may we have it".

An image lives in five places: the search index (its document), the files (original and thumbnail), the
pHash registry, the variant groups, and, once removed for good, the bans (its md5, and its pHash among the
purged ones). Every caller — the hasher, the admin api, the cleanup purge, the sweep's repair — goes through
here, so each place is written in one order, chosen so that a crash between any two steps leaves a state
the cleanup run repairs:

- adding: files (thumbnail first) -> index -> registry and groups. A crash leaves files without a document
  (the sweep reports them after its grace period, `--repair` removes them) or a document without a
  registry entry (`--repair` registers it; the full regroup groups it either way).
- editing (an owner's tags and rating): the edit in Redis -> index. Every index write applies the edits
  remembered, so a later scrape of the file never undoes one, and a crash between the two leaves an edit
  that the next write of the image applies.
- removing: bans (when asked: time, pHash, md5) -> index -> files -> groups -> registry. A crash leaves a
  banned md5 still indexed (every purge finishes its removal), files without a document, or a registry
  entry without a document (the sweep reports both, `--repair` removes them through `remove_traces`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import LockError

from paktum_common import keys
from paktum_common.contracts import ImageDocument, TagEdit
from paktum_common.dct_hash import PictureHashes
from paktum_common.errors import BannedImageError, TransientError
from paktum_common.groups import link_images, remove_from_groups
from paktum_common.log import log_event
from paktum_common.phash import Symmetry, simhashes_of
from paktum_common.redis_client import as_text
from paktum_common.registry import IMAGES, PURGED
from paktum_common.search import SearchBackend, SearchQuery
from paktum_common.settings import Settings
from paktum_common.store import ImageStore

log = logging.getLogger("paktum.catalog")

# Images per round of a large removal or registration: bounded work per Redis transaction and index call.
BATCH = 500
# A bulk edit's list of hits outlives an api that died mid-way by this long (renewed as it goes), no longer.
HITS_TTL_SECONDS = 3600
# Owners' edits one batch at a time, across api replicas: each reads an image's remembered edit and document and
# writes both back, so two at once would write over each other (a lost update). A holder that died frees the lock
# after EDIT_LOCK_SECONDS (a batch takes far less); an edit waiting longer than EDIT_WAIT_SECONDS gives up.
EDIT_LOCK_SECONDS = 60
EDIT_WAIT_SECONDS = 30


@dataclass(frozen=True)
class Standing:
    """What the catalog knows of a file by its md5 alone, before anything is downloaded."""

    banned: bool  # removed for good: refuse it
    indexed: bool  # we have it (its pHash is registered)


@dataclass(frozen=True)
class Indexed:
    """One index write: the documents that were already there, and every document as written."""

    existing: dict[str, ImageDocument]
    written: list[ImageDocument]


def hash_fields(hashes: PictureHashes) -> dict[str, object]:
    """An image document's hash fields, as the hasher writes them."""
    return {
        "PHash": hashes.plain,
        "PHashAlternates": hashes.alternates,
        "Symmetric": hashes.symmetric,
        "PHashSymmetric": hashes.symmetric_hashes,
        "PHashSignature": hashes.signature.hex(),
    }


def merge_documents(old: ImageDocument, new: ImageDocument) -> ImageDocument:
    """The same file seen again: keep when it was first added and where from, add any new tags."""
    tags = list(dict.fromkeys([*old.Tags, *new.Tags]))
    update: dict[str, object] = {"Tags": tags, "Tagstring": " ".join(tags)}
    if not old.PHashAlternates and new.PHashAlternates:  # indexed before alternates were computed
        update["PHashAlternates"] = new.PHashAlternates
    if not old.PHashSymmetric and new.PHashSymmetric:  # indexed before symmetric hashes were computed
        update.update(Symmetric=new.Symmetric, PHashSymmetric=new.PHashSymmetric)
    if len(new.PHashSignature) > len(old.PHashSignature):  # indexed before signatures (or hue marks) were kept
        update["PHashSignature"] = new.PHashSignature
    return old.model_copy(update=update)


class Admission:
    """The catalog's questions, answered from Redis alone: what a scraper (which has no index or files)
    needs to know before it publishes a post."""

    def __init__(self, redis: Redis, distance: int) -> None:
        self.redis = redis
        self.distance = distance  # PAKTUM_VARIANT_DISTANCE: linking, and "near a purged picture"

    async def standing(self, md5s: Sequence[str]) -> dict[str, Standing]:
        """Banned? Indexed? For every md5, in one round trip (the scraper asks before publishing)."""
        if not md5s:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.smismember(keys.BANNED_MD5, list(md5s))
            pipe.hmget(keys.PHASHES, list(md5s))
            banned, registered = await pipe.execute()
        return {
            md5: Standing(banned=bool(b), indexed=r is not None)
            for md5, b, r in zip(md5s, banned, registered, strict=True)
        }

    async def admit_file(self, md5: str) -> None:
        """May we have this file? Asked before decoding it: a banned md5 never costs a decode."""
        if await self.redis.sismember(keys.BANNED_MD5, md5):
            raise BannedImageError(f"md5 {md5} was removed for good and is banned")


class Catalog(Admission):
    """The whole catalog: admission, and every write to the index, the files, the registry and groups."""

    def __init__(self, redis: Redis, search: SearchBackend, store: ImageStore, distance: int) -> None:
        super().__init__(redis, distance)
        self.search = search
        self.store = store

    @classmethod
    def from_settings(cls, settings: Settings, redis: Redis, search: SearchBackend, store: ImageStore) -> Catalog:
        return cls(redis, search, store, settings.variant_distance)

    async def admit_picture(
        self, md5: str, phash: int, alternates: tuple[int, ...] = (), symmetry: Symmetry | None = None
    ) -> None:
        """May we have this picture? Asked right after decoding, before any file is stored.

        A file we already have is a duplicate (its tags are merged), never refused: the registry says so,
        or the index (a document whose registration failed is still ours). A new one within the variant
        distance of a purged picture is a re-upload of it (mirrored or rotated too, through its `alternates`; by
        symmetric hashes when either is symmetric, paktum_common.phash.match): refused, and its md5 banned too, so
        the scraper skips the file next time.
        """
        if await self.redis.hexists(keys.PHASHES, md5):
            return
        near = (await PURGED.near_any(self.redis, [(phash, *alternates)], self.distance, [symmetry]))[0]
        if not near or await self.search.get_document(md5) is not None:
            return
        purged, bits = near[0]
        await self.redis.sadd(keys.BANNED_MD5, md5)
        raise BannedImageError(f"a re-upload of the purged image {purged} ({bits} bits apart)")

    # ---- Adding ----------------------------------------------------------------------------------

    async def store_files(self, md5: str, filename: str, data: bytes, thumbnail: bytes, small: bytes = b"") -> None:
        # Thumbnails first: an image file present means its thumbnails are too.
        if small:
            await asyncio.to_thread(self.store.write_small_thumbnail, md5, small)
        await asyncio.to_thread(self.store.write_thumbnail, md5, thumbnail)
        await asyncio.to_thread(self.store.write_image, filename, data)

    async def index(self, documents: Iterable[ImageDocument]) -> Indexed:
        """Write documents whose files are stored, merged with what is indexed (a duplicate adds its tags).

        Raises what the index raises (a TransientError while it is down): the caller decides to retry.
        """
        fresh: dict[str, ImageDocument] = {}
        for doc in documents:
            fresh[doc.ID] = merge_documents(fresh[doc.ID], doc) if doc.ID in fresh else doc
        existing = await self.search.get_documents(list(fresh))
        edits = await self.tag_edits(list(fresh))
        # A new image is added when it is indexed, not when it was decoded: a write held back by an index
        # outage must not date an image from before a removal it raced (the purge compares the two).
        now = str(int(time.time()))
        merged = [
            merge_documents(existing[i], d) if i in existing else d.model_copy(update={"Added": now})
            for i, d in fresh.items()
        ]
        # Files younger than the grace period are never a sweep's leftovers: after a long retry, make them young.
        await asyncio.to_thread(self.store.touch, [(d.ID, d.Filename) for d in merged if d.ID not in existing])
        return Indexed(existing, await self._write_edited(merged, edits))

    async def _write_edited(self, documents: list[ImageDocument], edits: Mapping[str, TagEdit]) -> list[ImageDocument]:
        """Write documents with the owner's edits (`edits`, read before the documents were) applied: they win over
        what the source says, however often it says it again. Returns them as written."""
        written = [edits[d.ID].apply(d) if d.ID in edits else d for d in documents]
        await self.search.add_documents(written)
        # An edit made while this batch was being written (update_tags remembers it before reading the index)
        # may have been overwritten by it: asked again, and written again over it.
        later = await self.tag_edits([d.ID for d in documents])
        redone = {d.ID: later[d.ID].apply(d) for d in documents if d.ID in later and later[d.ID] != edits.get(d.ID)}
        if redone:
            await self.search.add_documents(list(redone.values()))
            written = [redone.get(d.ID, d) for d in written]
        return written

    async def replace_hashes(self, hashes: Mapping[str, PictureHashes]) -> list[str]:
        """Indexed images hashed again (a rehash by newer rules): their registry entries replaced in one
        transaction, then their documents' hash fields, every other field as it is. An image removed meanwhile
        stays removed. Returns the md5s rewritten; their variant groups are the next regroup's."""
        done: list[str] = []
        ids = list(hashes)
        for start in range(0, len(ids), BATCH):
            edits = await self.tag_edits(ids[start : start + BATCH])
            documents = await self.search.get_documents(ids[start : start + BATCH])
            replaced = await IMAGES.replace(
                self.redis,
                {md5: hashes[md5].plain for md5 in documents},
                {md5: hashes[md5].alternates for md5 in documents},
                {md5: hashes[md5].symmetry for md5 in documents},
                simhashes_of({md5: hashes[md5].signature for md5 in documents}),
            )
            rewritten = [documents[md5].model_copy(update=hash_fields(hashes[md5])) for md5 in replaced]
            await self._write_edited(rewritten, edits)
            done += replaced
        return done

    async def register_only(self, phashes: Mapping[str, int]) -> list[str]:
        """Registry entries for indexed images that lack one (the sweep's repair), without linking: the full
        regroup that follows links everything. Asks the index first, in batches: an image removed meanwhile
        is not brought back. Returns the md5s registered."""
        done: list[str] = []
        ids = list(phashes)
        for start in range(0, len(ids), BATCH):
            indexed = await self.search.get_documents(ids[start : start + BATCH])
            alternates = {md5: doc.PHashAlternates for md5, doc in indexed.items()}
            symmetry = {md5: doc.symmetry for md5, doc in indexed.items()}
            codes = simhashes_of({md5: doc.signature for md5, doc in indexed.items()})
            await IMAGES.add(self.redis, {md5: phashes[md5] for md5 in indexed}, alternates, symmetry, codes)
            done += list(indexed)
        return done

    async def register(
        self,
        phashes: Mapping[str, int],
        alternates: Mapping[str, tuple[int, ...]] | None = None,
        symmetry: Mapping[str, Symmetry | None] | None = None,
        signatures: Mapping[str, bytes] | None = None,
    ) -> int:
        """Register indexed images' pHashes (md5 -> pHash, and their alternates, Symmetry and signatures) and link
        each into its variant group at once (one round trip to find candidates, one index read for their
        signatures); returns how many joined a group. The cleanup run redoes both."""
        return await link_images(
            self.redis, phashes, self.distance, alternates, symmetry, signatures, self._signatures_of
        )

    async def _signatures_of(self, md5s: list[str]) -> dict[str, bytes]:
        """Indexed images' signatures (those that have one), BATCH at a time."""
        found: dict[str, bytes] = {}
        for start in range(0, len(md5s), BATCH):
            documents = await self.search.get_documents(md5s[start : start + BATCH])
            found.update({md5: doc.signature for md5, doc in documents.items() if doc.signature})
        return found

    # ---- Editing ---------------------------------------------------------------------------------

    async def tag_edits(self, md5s: Sequence[str]) -> dict[str, TagEdit]:
        """The owner's edits of these images, for those that have one (one round trip)."""
        if not md5s:
            return {}
        stored = await self.redis.hmget(keys.TAG_EDITS, list(md5s))
        return {md5: TagEdit.from_redis(value) for md5, value in zip(md5s, stored, strict=True) if value}

    async def update_tags(self, md5s: Sequence[str], edit: TagEdit) -> list[ImageDocument]:
        """Apply an owner's edit to these indexed images (an unknown md5 is skipped), at most BATCH at a time.

        Remembered first (merged with the image's earlier edits, the later winning), then written to the
        index: an edit cut short by a crash is applied by the next index write of the image, or by asking
        again. Returns the documents that changed, as written.
        """
        ids = list(dict.fromkeys(md5s))
        if len(ids) > BATCH:
            raise ValueError(f"update_tags takes at most {BATCH} images at a time, got {len(ids)}")
        lock = self.redis.lock(keys.TAG_EDIT_LOCK, timeout=EDIT_LOCK_SECONDS, blocking_timeout=EDIT_WAIT_SECONDS)
        if not await lock.acquire():
            raise TransientError(f"another tag edit has been running for {EDIT_WAIT_SECONDS} s: try again")
        try:
            documents = await self.search.get_documents(ids)
            if not documents:
                return []
            earlier = await self.tag_edits(list(documents))
            remembered = {md5: earlier[md5].then(edit) if md5 in earlier else edit for md5 in documents}
            await self.redis.hset(keys.TAG_EDITS, mapping={md5: e.to_redis() for md5, e in remembered.items()})
            # All of the image's edits, not only this one: one cut short by a crash before its index write is done now.
            changed = [new for md5, doc in documents.items() if (new := remembered[md5].apply(doc)) != doc]
            await self.search.add_documents(changed)
            return changed
        finally:
            try:
                await lock.release()
            except LockError:  # it expired meanwhile (or Redis went away): the edit is written all the same
                log_event(log, logging.WARNING, "tag edit lock was lost before its release", images=len(ids))

    async def update_matching(self, query: SearchQuery, edit: TagEdit) -> tuple[int, int]:
        """Apply an owner's edit to every image `query` finds; returns (images matched, images changed).

        The hits are listed first, into a Redis list that expires (an edit can take a tag the query looks
        for away: paging the search while editing would skip images), then edited BATCH at a time, so memory
        stays bounded however many images match.
        """
        hits = f"{keys.TAG_EDIT_HITS}{uuid.uuid4().hex}"
        matched = changed = 0
        try:
            async for ids in self.search.matching_ids(query, BATCH):
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.rpush(hits, *ids)
                    pipe.expire(hits, HITS_TTL_SECONDS)
                    await pipe.execute()
                matched += len(ids)
            for start in range(0, matched, BATCH):
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.lrange(hits, start, start + BATCH - 1)
                    pipe.expire(hits, HITS_TTL_SECONDS)  # however long the whole edit takes
                    page, _ = await pipe.execute()
                changed += len(await self.update_tags([as_text(md5) for md5 in page], edit))
        finally:
            await self.redis.delete(hits)
        return matched, changed

    # ---- Removing --------------------------------------------------------------------------------

    async def remove(self, md5s: Iterable[str], *, ban: bool, reason: str) -> list[str]:
        """Remove these images everywhere; with `ban`, remember their md5s and pHashes first, so neither
        the file nor a re-upload of the picture ever comes back. Idempotent: a removal cut short is
        finished by calling it again (the sweep does). Returns the md5s that were there (indexed or registered)."""
        ids = list(dict.fromkeys(md5.strip().lower() for md5 in md5s))
        if not ids:
            return []
        documents = await self.search.get_documents(ids)
        registered, _, registered_symmetry = await IMAGES.stored(self.redis, ids)
        phashes = {**registered, **{md5: doc.PHash for md5, doc in documents.items()}}
        symmetry = {**registered_symmetry, **{md5: doc.symmetry for md5, doc in documents.items()}}
        if ban:
            # Remembered first: a removal cut short after this still refuses the picture everywhere. When
            # before what: a purged pHash without its time is read as one from before times were kept.
            if phashes:
                await self.redis.hset(keys.PURGED_AT, mapping=dict.fromkeys(phashes, str(int(time.time()))))
            await PURGED.add(self.redis, phashes, symmetry=symmetry)
            await self.redis.sadd(keys.BANNED_MD5, *ids)
        # Index first: once no answer links to the files, removing them breaks no page.
        await self.search.delete_documents(ids)
        await self._erase(ids, documents)
        gone = [md5 for md5 in ids if md5 in phashes]
        for md5 in gone:
            doc = documents.get(md5)
            log_event(
                log, logging.INFO, "image removed", md5=md5, reason=reason, banned=ban,
                source=doc.Source if doc else "", post=doc.SourceID if doc else "",
            )  # fmt: skip
        return gone

    async def remove_traces(self, md5s: Iterable[str], reason: str) -> list[str]:
        """Remove what is left of images the index does not have: files, registry entries, group membership.

        Asked of the index right before: an image indexed meanwhile (the hasher stores files first) is
        left alone. Returns the md5s whose traces were removed.
        """
        ids = list(dict.fromkeys(md5s))
        if not ids:
            return []
        indexed = await self.search.get_documents(ids)
        strays = [md5 for md5 in ids if md5 not in indexed]
        await self._erase(strays, {})
        for md5 in strays:
            log_event(log, logging.INFO, "image traces removed", md5=md5, reason=reason)
        return strays

    async def _erase(self, ids: list[str], documents: Mapping[str, ImageDocument]) -> None:
        """Files, then groups, then the registry: the registry entry goes last, so a removal cut short
        still shows as a registry entry without a document, which the sweep finds."""
        for md5 in ids:
            doc = documents.get(md5)
            await asyncio.to_thread(self.store.delete, md5, doc.Filename if doc else None)
        await remove_from_groups(self.redis, ids, self.distance)
        if ids:
            await self.redis.hdel(keys.TAG_EDITS, *ids)  # an image that comes back starts afresh
        await IMAGES.remove(self.redis, ids)

    async def purged_at(self, md5s: Sequence[str]) -> Mapping[str, int]:
        """When each purged picture was removed (UNIX seconds; 0 for one purged before this was kept)."""
        if not md5s:
            return {}
        stored = await self.redis.hmget(keys.PURGED_AT, list(md5s))
        return {md5: int(value) if value else 0 for md5, value in zip(md5s, stored, strict=True)}
