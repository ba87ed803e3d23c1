"""Booru sources by name: the built-in sites, overridden and extended by PAKTUM_SCRAPE_SOURCES."""

from __future__ import annotations

import json
from typing import Any

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
FIELDS = {"api", "url", "user", "api_key", "rate"}


class SourceConfigError(PaktumError):
    """PAKTUM_SCRAPE_SOURCES or a source name is wrong; the message says how."""


def source_configs(settings: Settings) -> dict[str, SourceConfig]:
    raw: dict[str, dict[str, Any]] = {name: dict(entry) for name, entry in BUILTIN.items()}
    if settings.scrape_sources.strip():
        try:
            extra = json.loads(settings.scrape_sources)
        except json.JSONDecodeError as exc:
            raise SourceConfigError(f"PAKTUM_SCRAPE_SOURCES is not valid JSON: {exc}") from exc
        if not isinstance(extra, dict) or not all(isinstance(v, dict) for v in extra.values()):
            raise SourceConfigError('PAKTUM_SCRAPE_SOURCES must be a JSON object: {"name": {"url": ...}, ...}')
        for name, entry in extra.items():
            unknown = set(entry) - FIELDS
            if unknown:
                raise SourceConfigError(
                    f"PAKTUM_SCRAPE_SOURCES[{name!r}]: unknown field(s) {', '.join(sorted(unknown))} "
                    f"(known: {', '.join(sorted(FIELDS))})"
                )
            raw.setdefault(name, {}).update(entry)
    configs = {}
    for name, entry in raw.items():
        api, url = entry.get("api"), entry.get("url")
        if api not in APIS:
            raise SourceConfigError(f"source {name!r}: api must be one of {', '.join(APIS)}, not {api!r}")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SourceConfigError(f"source {name!r}: url must be an http(s) URL, not {url!r}")
        try:
            rate = float(entry.get("rate", settings.scrape_rate))
        except (TypeError, ValueError) as exc:
            raise SourceConfigError(f"source {name!r}: rate must be a number of requests per second") from exc
        if rate <= 0:
            raise SourceConfigError(f"source {name!r}: rate must be above 0")
        configs[name] = SourceConfig(
            name=name,
            api=api,
            url=url,
            user=str(entry.get("user") or ""),
            api_key=str(entry.get("api_key") or ""),
            rate=rate,
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
