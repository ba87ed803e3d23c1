"""One settings object for every service, read once from `PAKTUM_*` environment variables."""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from paktum_common import keys


class SourceOverride(BaseModel):
    """One PAKTUM_SCRAPE_SOURCES entry: what it changes of a built-in site, or all of a new one."""

    # A misspelt field would otherwise be dropped in silence (a key that is never sent);
    # numbers are taken as text because a user id is often written as one.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)

    api: str | None = None  # the scraper checks it names an API it has
    url: str | None = Field(None, pattern=r"^https?://")
    user: str | None = None
    api_key: SecretStr | None = None
    rate: float | None = Field(None, gt=0)  # requests per second; unset: PAKTUM_SCRAPE_RATE


class Settings(BaseSettings):
    """Every knob Paktum has. Each default is safe for local use and none is a secret."""

    model_config = SettingsConfigDict(env_prefix="PAKTUM_", extra="ignore")

    # Where things live.
    data_dir: Path = Path("paktum-data")
    redis_url: str | None = None  # None: `paktum up` starts an embedded redis-server
    search_url: str | None = None  # None: sqlite:///<data_dir>/search.sqlite3
    public_url: str | None = None  # None: the api derives links from the request

    # The ingest stream.
    stream: str = keys.INGEST_STREAM
    dead_letter_stream: str = keys.DEAD_LETTERS
    consumer_group: str = "hashers"
    consumer_name: str | None = None  # None: hostname-pid
    publish_batch_size: int = Field(50, ge=1)
    max_deliveries: int = Field(5, ge=1)
    reclaim_idle_ms: int = Field(60_000, ge=0)
    read_block_ms: int = Field(2_000, ge=0)

    # Images.
    max_image_pixels: int = Field(120_000_000, ge=1)
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1)
    thumbnail_size: int = Field(300, ge=16, le=2048)
    phash_mode: Literal["fast", "exact"] = "fast"
    hasher_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    hasher_batch_size: int = Field(16, ge=1)

    # Variants.
    variant_distance: int = Field(10, ge=0, le=64)
    # Match variants through mirrors, rotations and the other background of a transparent picture (the
    # hasher's alternate pHashes). Off: the hasher stores none and the cleanup regroup uses only plain pHashes.
    variant_transforms: bool = True

    # Banned tags (scraper skips, cleanup purges): a list here and/or a file, one tag per line.
    banned_tags: Annotated[list[str], NoDecode] = []  # separated by spaces, commas or newlines, or a JSON list
    banned_tags_file: Path | None = None

    # Services.
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535)
    metrics_port: int = Field(0, ge=0, le=65535)  # 0: no separate metrics server
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "text"

    # Secrets: no defaults, the feature that needs one is off without it.
    admin_token: SecretStr | None = None

    # Meilisearch.
    meili_key: SecretStr | None = None  # sent as a Bearer token; unset: no key (a server without a master key)
    meili_index: str = Field("images", pattern=r"^[A-Za-z0-9_-]+$")
    meili_timeout_seconds: float = Field(10.0, gt=0)  # one HTTP request
    meili_task_timeout_seconds: float = Field(300.0, gt=0)  # one write task, from enqueued to done

    # Scraper.
    scrape_source: Annotated[list[str], NoDecode] = ["gelbooru"]  # what `paktum scrape` uses without --source
    scrape_queries: str = ""  # paktum-scraper's queries: one per line, tags separated by spaces
    # JSON object, per source name: api, url, user, api_key, rate (requests/s); merged over the built-in sites.
    # Holds credentials when given, so no default beyond the public sites' addresses.
    scrape_sources: Annotated[dict[str, SourceOverride], NoDecode] = {}
    scrape_rate: float = Field(1.0, gt=0)  # requests per second per source, shared by every scraper process
    scrape_max_posts: int = Field(0, ge=0)  # per query; 0: to the end of the query
    scrape_timeout_seconds: float = Field(30.0, gt=0)
    scrape_retries: int = Field(5, ge=0)  # per page, on timeouts, 5xx and 429
    scrape_backoff_seconds: float = Field(1.0, ge=0)  # first retry's wait; doubles each time
    scrape_max_wait_seconds: float = Field(300.0, ge=0)  # cap on one backoff or Retry-After wait
    download_timeout_seconds: float = Field(60.0, gt=0)  # the hasher's download of a post's file
    download_allow_private: bool = False  # allow downloads from loopback/private addresses (tests, a LAN booru)

    # Api.
    cors_origins: Annotated[list[str], NoDecode] = []  # origins allowed to call the api from a browser; none by default
    imgproxy_url: str | None = None  # with key and salt: ThumbnailURL is a signed imgproxy URL
    imgproxy_key: SecretStr | None = None  # hex, as imgproxy's IMGPROXY_KEY
    imgproxy_salt: SecretStr | None = None  # hex, as imgproxy's IMGPROXY_SALT
    imgproxy_source: str = "local:///"  # what imgproxy reads: this + Filename (local:/// = a shared images volume)
    imgproxy_options: str = "rs:fit:300:300"  # imgproxy processing options for ThumbnailURL
    # Search by image (POST /api/similar, similarImages): the largest picture accepted, uploaded or fetched, and
    # how long its decode may take.
    similar_max_bytes: int = Field(20 * 1024 * 1024, ge=1)
    similar_timeout_seconds: float = Field(10.0, gt=0)
    graphql_max_depth: int = Field(8, ge=2)
    graphql_max_cost: int = Field(50_000, ge=1)  # see paktum_api.limits for how a query is priced

    # Cleanup.
    cleanup_interval: int = Field(3600, ge=0)  # seconds between runs under `paktum up`; 0: not scheduled
    # The hasher stores a file before it indexes it: younger files are never called orphans by the sweep.
    cleanup_grace_seconds: int = Field(900, ge=0)

    @field_validator("imgproxy_key", "imgproxy_salt")
    @classmethod
    def _hex(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                bytes.fromhex(value.get_secret_value())
            except ValueError:
                raise ValueError("must be hex-encoded, as imgproxy expects it") from None
        return value

    @field_validator("banned_tags", "scrape_source", "cors_origins", mode="before")
    @classmethod
    def _words(cls, value: object) -> object:
        # The environment's form: a JSON list, or words separated by commas, spaces or newlines.
        if isinstance(value, str):
            return json.loads(value) if value.lstrip().startswith("[") else value.replace(",", " ").split()
        return value

    @field_validator("scrape_sources", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        # Decoded here rather than by pydantic-settings so that an empty variable stays "no overrides".
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator(
        "redis_url", "search_url", "public_url", "consumer_name", "admin_token", "banned_tags_file", "meili_key",
        "imgproxy_url", "imgproxy_key", "imgproxy_salt", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @cached_property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @cached_property
    def thumbnails_dir(self) -> Path:
        return self.data_dir / "thumbnails"

    @cached_property
    def effective_search_url(self) -> str:
        if self.search_url:
            return self.search_url
        return f"sqlite:///{(self.data_dir / 'search.sqlite3').resolve()}"

    @cached_property
    def effective_consumer_name(self) -> str:
        if self.consumer_name:
            return self.consumer_name
        return f"{os.uname().nodename}-{os.getpid()}"


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; services call this at start and pass the result down."""
    return Settings(**overrides)  # type: ignore[arg-type]
