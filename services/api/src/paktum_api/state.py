"""What every request handler shares: settings, Redis, the search backend, the store."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from starlette.requests import Request

from paktum_api.imgproxy import Imgproxy
from paktum_api.kube import ScrapeJobs
from paktum_api.links import Network, networks, request_base
from paktum_common.catalog import Catalog
from paktum_common.contracts import ImageDocument
from paktum_common.search import SearchBackend
from paktum_common.settings import Settings
from paktum_common.store import SMALL, ImageStore

if TYPE_CHECKING:  # access imports admin, which imports this module
    from paktum_api.access import ReadAccess


@dataclass
class AppState:
    settings: Settings
    redis: Redis
    search: SearchBackend
    store: ImageStore
    imgproxy: Imgproxy | None = None
    scrape_jobs: ScrapeJobs | None = None  # startScrape as a Kubernetes Job; None: the Redis stream
    access: ReadAccess | None = None  # private mode: links to files and thumbnails are signed
    started: float = field(default_factory=time.time)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog.from_settings(self.settings, self.redis, self.search, self.store)

    @cached_property
    def trusted_proxies(self) -> tuple[Network, ...]:
        return networks(self.settings.trusted_proxies)

    def base_url(self, request: Request) -> str:
        """Where links in the answer to `request` point (see paktum_api.links)."""
        return request_base(request, self.settings.public_url, self.trusted_proxies)

    def links(self, doc: ImageDocument, base_url: str) -> tuple[str, str]:
        """(URL, ThumbnailURL) as this api serves them, under `base_url` (from `base_url(request)`).

        With imgproxy configured the thumbnail is a signed imgproxy URL for the stored file instead.
        """
        base = base_url.rstrip("/")
        if self.imgproxy is not None:
            thumbnail = self.imgproxy.url(doc.Filename)
        else:
            thumbnail = self.served(base, f"/thumbnails/{ImageStore.thumbnail_name(doc.ID)}")
        return self.served(base, f"/images/{doc.Filename}"), thumbnail

    def served(self, base: str, path: str) -> str:
        """The link to a file this api serves; in private mode signed, so an `<img>` opens it without headers."""
        return base + (self.access.sign_link(path) if self.access is not None else path)

    def srcset(self, doc: ImageDocument, base_url: str, thumbnail: str) -> str:
        """The thumbnails as an `<img srcset>`: the smaller one and the default one (`thumbnail`, from `links`),
        each with its width.

        An image stored before the smaller size existed has none: its URL serves the default thumbnail.
        With imgproxy, its one thumbnail URL.
        """
        if self.imgproxy is not None:
            return thumbnail
        size, small = self.settings.thumbnail_size, self.settings.thumbnail_small_size
        if not 0 < small < size:
            return f"{thumbnail} {size}w"
        small_url = self.served(base_url.rstrip("/"), f"/thumbnails/{SMALL}/{ImageStore.thumbnail_name(doc.ID)}")
        return f"{small_url} {small}w, {thumbnail} {size}w"
