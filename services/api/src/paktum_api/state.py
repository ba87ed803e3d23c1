"""What every request handler shares: settings, Redis, the search backend, the store."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

from redis.asyncio import Redis
from starlette.requests import Request

from paktum_api.imgproxy import Imgproxy
from paktum_api.links import Network, networks, request_base
from paktum_common.catalog import Catalog
from paktum_common.contracts import ImageDocument
from paktum_common.search import SearchBackend
from paktum_common.settings import Settings
from paktum_common.store import ImageStore


@dataclass
class AppState:
    settings: Settings
    redis: Redis
    search: SearchBackend
    store: ImageStore
    imgproxy: Imgproxy | None = None
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
            thumbnail = f"{base}/thumbnails/{ImageStore.thumbnail_name(doc.ID)}"
        return f"{base}/images/{doc.Filename}", thumbnail
