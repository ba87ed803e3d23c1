"""Booru sources by name: the built-in sites, overridden and extended by PAKTUM_SCRAPE_SOURCES."""

from __future__ import annotations

from typing import Any

from paktum_common.contracts import LOCAL_SOURCE
from paktum_common.errors import PaktumError
from paktum_common.settings import Settings
from paktum_scraper.sources.base import (
    Page,
    PageError,
    Skipped,
    Source,
    SourceAuthError,
    SourceConfig,
    SourceError,
    SourceQueryError,
)
from paktum_scraper.sources.danbooru import DanbooruSource
from paktum_scraper.sources.e621 import E621Source
from paktum_scraper.sources.gelbooru import GelbooruSource
from paktum_scraper.sources.moebooru import MoebooruSource

APIS: dict[str, type[Source]] = {cls.api: cls for cls in (GelbooruSource, DanbooruSource, MoebooruSource, E621Source)}

# Public sites that work with no configuration beyond credentials (where the site requires them).
BUILTIN: dict[str, dict[str, str]] = {
    "gelbooru": {"api": "gelbooru", "url": "https://gelbooru.com"},
    "safebooru": {"api": "gelbooru", "url": "https://safebooru.org"},
    "danbooru": {"api": "danbooru", "url": "https://danbooru.donmai.us"},
    "yandere": {"api": "moebooru", "url": "https://yande.re"},
    "konachan": {"api": "moebooru", "url": "https://konachan.com"},
    "e621": {"api": "e621", "url": "https://e621.net"},
}


class SourceConfigError(PaktumError):
    """A source name, or a source PAKTUM_SCRAPE_SOURCES leaves incomplete, is wrong; the message says how."""


def source_configs(settings: Settings) -> dict[str, SourceConfig]:
    """The built-in sites with PAKTUM_SCRAPE_SOURCES merged over them (its fields are checked by Settings)."""
    overrides = settings.scrape_sources
    configs = {}
    for name in {**BUILTIN, **overrides}:
        if name == LOCAL_SOURCE:
            raise SourceConfigError(f"source name {name!r} is reserved for `paktum import`'s local files")
        entry: dict[str, Any] = dict(BUILTIN.get(name, {}))
        if name in overrides:
            entry.update(overrides[name].model_dump(exclude_none=True))
        api, url = entry.get("api"), entry.get("url")
        if api not in APIS:
            raise SourceConfigError(f"source {name!r}: api must be one of {', '.join(APIS)}, not {api!r}")
        if url is None:
            raise SourceConfigError(f"source {name!r}: url must be an http(s) URL, not {url!r}")
        api_key = entry.get("api_key")
        configs[name] = SourceConfig(
            name=name,
            api=api,
            url=url,
            user=entry.get("user", ""),
            api_key=api_key.get_secret_value() if api_key else "",
            rate=entry.get("rate", settings.scrape_rate),
        )
    return configs


def make_source(config: SourceConfig) -> Source:
    return APIS[config.api](config)


__all__ = [
    "APIS",
    "BUILTIN",
    "Page",
    "PageError",
    "Skipped",
    "Source",
    "SourceAuthError",
    "SourceConfig",
    "SourceConfigError",
    "SourceError",
    "SourceQueryError",
    "make_source",
    "source_configs",
]
