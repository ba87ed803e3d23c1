"""Turn one post into a stored file, a thumbnail and an image document."""

from __future__ import annotations

import asyncio
import hashlib
import time
from concurrent.futures import Executor
from dataclasses import dataclass

from redis.asyncio import Redis

from paktum_common import keys
from paktum_common.errors import BadImageError, BannedImageError
from paktum_common.models import ImageDocument, Post
from paktum_common.settings import Settings
from paktum_common.store import ImageStore
from paktum_hasher.decode import DecodedImage, decode_image
from paktum_hasher.fetch import fetch_media


@dataclass(frozen=True)
class Ingested:
    document: ImageDocument
    seconds: float


class Ingestor:
    def __init__(self, settings: Settings, store: ImageStore, pool: Executor, redis: Redis | None = None) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool
        self.redis = redis  # for the banned-md5 check; None only where no purge can have happened

    async def ingest(self, post: Post) -> Ingested:
        started = time.perf_counter()
        media = await fetch_media(post.source, post.file_url, self.settings)
        data = media.data
        md5 = hashlib.md5(data).hexdigest()
        if post.md5 and post.md5 != md5:
            raise BadImageError(f"md5 mismatch: the source states {post.md5}, the file is {md5}")
        # Checked before any work: a purged file must not come back, whoever publishes it again.
        if self.redis is not None and await self.redis.sismember(keys.BANNED_MD5, md5):
            raise BannedImageError(f"md5 {md5} was purged and is banned")
        loop = asyncio.get_running_loop()
        decoded: DecodedImage = await loop.run_in_executor(
            self.pool,
            decode_image,
            media.picture,
            self.settings.max_image_pixels,
            self.settings.thumbnail_size,
            self.settings.phash_mode,
        )
        filename = f"{md5}.{media.ext or decoded.ext}"
        # Thumbnail first: an image file present means its thumbnail is too.
        await asyncio.to_thread(self.store.write_thumbnail, md5, decoded.thumbnail)
        await asyncio.to_thread(self.store.write_image, filename, data)
        document = ImageDocument(
            ID=md5,
            URL=f"/images/{filename}",
            ThumbnailURL=f"/thumbnails/{ImageStore.thumbnail_name(md5)}",
            Tags=post.tags,
            Tagstring=" ".join(post.tags),
            Rating=post.rating,
            Added=str(int(time.time())),
            PHash=decoded.phash,
            Size=len(data),
            Width=decoded.width,
            Height=decoded.height,
            Filename=filename,
            Source=post.source,
            SourceID=post.source_id,
            SourceURL=post.page_url,
        )
        return Ingested(document, time.perf_counter() - started)


def merge_documents(old: ImageDocument, new: ImageDocument) -> ImageDocument:
    """The same file seen again: keep when it was first added and where from, add any new tags."""
    tags = list(dict.fromkeys([*old.Tags, *new.Tags]))
    return old.model_copy(update={"Tags": tags, "Tagstring": " ".join(tags)})
