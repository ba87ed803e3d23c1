"""Turn one post into a stored file, a thumbnail and an image document."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial

from paktum_common.catalog import Catalog
from paktum_common.contracts import ImageDocument, Post
from paktum_common.errors import BadImageError
from paktum_common.settings import Settings
from paktum_hasher.decode import DecodedImage, decode_image
from paktum_hasher.fetch import fetch_media


def decoder(settings: Settings, picture: bytes, small_thumbnail: bool = True) -> Callable[[], DecodedImage]:
    """decode_image of `picture` at the hasher's settings (its limits, thumbnail size and pHash mode, on which the
    hashes depend), for a decode pool; without the small thumbnail when it is not wanted (a rehash)."""
    return partial(
        decode_image,
        picture,
        settings.max_image_pixels,
        settings.thumbnail_size,
        settings.phash_mode,
        small_size=settings.thumbnail_small_size if small_thumbnail else 0,
        memory_mib=settings.decode_memory_mib,
    )


@dataclass(frozen=True)
class Ingested:
    document: ImageDocument
    seconds: float


class Ingestor:
    """One post to a stored image and its document; the catalog decides whether it may be had."""

    def __init__(self, settings: Settings, catalog: Catalog, pool: Executor) -> None:
        self.settings = settings
        self.catalog = catalog
        self.pool = pool

    async def ingest(self, post: Post) -> Ingested:
        started = time.perf_counter()
        media = await fetch_media(post.source, post.file_url, self.settings)
        data = media.data
        md5 = hashlib.md5(data).hexdigest()
        if post.md5 and post.md5 != md5:
            raise BadImageError(f"md5 mismatch: the source states {post.md5}, the file is {md5}")
        await self.catalog.admit_file(md5)  # a banned file costs no decode, whoever publishes it again
        loop = asyncio.get_running_loop()
        decoded: DecodedImage = await loop.run_in_executor(self.pool, decoder(self.settings, media.picture))
        alternates = decoded.alternates if self.settings.variant_transforms else ()
        await self.catalog.admit_picture(md5, decoded.phash, alternates, decoded.symmetry)  # before any file is written
        filename = f"{md5}.{media.ext or decoded.ext}"
        await self.catalog.store_files(md5, filename, data, decoded.thumbnail, decoded.small_thumbnail)
        document = ImageDocument(
            ID=md5,
            Tags=post.tags,
            Tagstring=" ".join(post.tags),
            Rating=post.rating,
            Added=str(int(time.time())),
            PHash=decoded.phash,
            PHashAlternates=alternates,
            Symmetric=decoded.symmetric,
            PHashSymmetric=decoded.symmetric_hashes,
            PHashSignature=decoded.signature.hex(),
            Size=len(data),
            Width=decoded.width,
            Height=decoded.height,
            Filename=filename,
            Source=post.source,
            SourceID=post.source_id,
            SourceURL=post.page_url,
        )
        return Ingested(document, time.perf_counter() - started)
