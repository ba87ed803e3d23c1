"""What every request handler shares: settings, Redis, the search backend, the store."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

from redis.asyncio import Redis

from paktum_api.imgproxy import Imgproxy
from paktum_api.kube import ScrapeJobs
from paktum_common.catalog import Catalog
from paktum_common.contracts import ImageDocument
from paktum_common.search import SearchBackend
from paktum_common.settings import Settings
from paktum_common.store import SMALL, ImageStore


@dataclass
class AppState:
    settings: Settings
    redis: Redis
    search: SearchBackend
    store: ImageStore
    imgproxy: Imgproxy | None = None
    scrape_jobs: ScrapeJobs | None = None  # startScrape as a Kubernetes Job; None: the Redis stream
    started: float = field(default_factory=time.time)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog.from_settings(self.settings, self.redis, self.search, self.store)

    def links(self, doc: ImageDocument, base_url: str) -> tuple[str, str]:
        """(URL, ThumbnailURL) as this api serves them: under PAKTUM_PUBLIC_URL, or the request's own base.

        With imgproxy configured the thumbnail is a signed imgproxy URL for the stored file instead.
        """
        base = (self.settings.public_url or base_url).rstrip("/")
        if self.imgproxy is not None:
            thumbnail = self.imgproxy.url(doc.Filename)
        else:
            thumbnail = f"{base}/thumbnails/{ImageStore.thumbnail_name(doc.ID)}"
        return f"{base}/images/{doc.Filename}", thumbnail

    def srcset(self, doc: ImageDocument, base_url: str) -> str:
        """The thumbnails as an `<img srcset>`: the smaller one and the default one, each with its width.

        An image stored before the smaller size existed has none: its URL serves the default thumbnail.
        With imgproxy, its one thumbnail URL.
        """
        thumbnail = self.links(doc, base_url)[1]
        if self.imgproxy is not None:
            return thumbnail
        size, small = self.settings.thumbnail_size, self.settings.thumbnail_small_size
        if not 0 < small < size:
            return f"{thumbnail} {size}w"
        base = (self.settings.public_url or base_url).rstrip("/")
        return f"{base}/thumbnails/{SMALL}/{ImageStore.thumbnail_name(doc.ID)} {small}w, {thumbnail} {size}w"
