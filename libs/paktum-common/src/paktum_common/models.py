"""The domain: ratings, posts (scraper -> hasher) and image documents (the index's record)."""

from __future__ import annotations

import enum
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from paktum_common.errors import BadPostError

PHASH_MAX = (1 << 64) - 1


class Rating(enum.StrEnum):
    general = "general"
    safe = "safe"
    questionable = "questionable"
    explicit = "explicit"

    @classmethod
    def parse(cls, value: str) -> Rating:
        """Map the letters and words the booru sites use onto our four ratings."""
        key = value.strip().lower()
        rating = _RATING_ALIASES.get(key)
        if rating is None:
            raise BadPostError(f"unknown rating {value!r}")
        return rating


_RATING_ALIASES: dict[str, Rating] = {
    "g": Rating.general,
    "general": Rating.general,
    "s": Rating.safe,
    "safe": Rating.safe,
    "sensitive": Rating.safe,
    "q": Rating.questionable,
    "questionable": Rating.questionable,
    "e": Rating.explicit,
    "explicit": Rating.explicit,
}


def normalize_tags(tags: list[str] | str) -> list[str]:
    """Tags are lower-case, contain no whitespace, appear once, and keep their first order."""
    raw = tags.split() if isinstance(tags, str) else tags
    seen: dict[str, None] = {}
    for tag in raw:
        clean = "_".join(tag.strip().lower().split())
        if clean:
            seen.setdefault(clean, None)
    return list(seen)


class Post(BaseModel):
    """One image to ingest, as a source states it. Published on the ingest stream."""

    model_config = ConfigDict(frozen=True)

    source: str
    source_id: str = ""
    md5: str = ""  # as the source states it; empty when unknown (local files)
    file_url: str
    tags: list[str] = Field(default_factory=list)
    rating: Rating = Rating.general
    page_url: str = ""
    width: int | None = None
    height: int | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _normalize(cls, value: Any) -> list[str]:
        return normalize_tags(value)

    @field_validator("rating", mode="before")
    @classmethod
    def _rating(cls, value: Any) -> Any:
        return Rating.parse(value) if isinstance(value, str) else value

    @field_validator("md5")
    @classmethod
    def _md5_hex(cls, value: str) -> str:
        value = value.strip().lower()
        if value and (len(value) != 32 or any(c not in "0123456789abcdef" for c in value)):
            raise ValueError(f"md5 must be 32 hex digits, got {value!r}")
        return value

    def to_stream(self) -> dict[str, str]:
        """The one place a post becomes a stream entry."""
        return {"post": self.model_dump_json()}

    @classmethod
    def from_stream(cls, fields: dict[str, str]) -> Post:
        try:
            return cls.model_validate_json(fields["post"])
        except (KeyError, ValueError) as exc:
            raise BadPostError(f"malformed stream entry: {exc}") from exc


def phash_to_hex(value: int) -> str:
    return f"{value:016x}"


def phash_from_hex(value: str) -> int:
    number = int(value, 16)
    if not 0 <= number <= PHASH_MAX or len(value) != 16:
        raise ValueError(f"a pHash is 16 hex digits, got {value!r}")
    return number


class ImageDocument(BaseModel):
    """An indexed image. Field names are the original Paktum's, so existing clients keep working."""

    model_config = ConfigDict(frozen=True)

    ID: str
    URL: str
    ThumbnailURL: str
    Tags: list[str]
    Tagstring: str
    Rating: Rating
    Added: str  # UNIX seconds, as a string (as the original)
    PHash: int = Field(ge=0, le=PHASH_MAX)
    Size: int
    Width: int
    Height: int
    Filename: str
    Source: str = ""
    SourceID: str = ""
    SourceURL: str = ""

    @property
    def added_seconds(self) -> int:
        return int(self.Added)

    def to_index(self) -> dict[str, Any]:
        """The index form: the pHash as 16 hex digits, never a JSON number (a double would corrupt it)."""
        doc = self.model_dump(mode="json")
        doc["PHash"] = phash_to_hex(self.PHash)
        return doc

    @classmethod
    def from_index(cls, doc: dict[str, Any]) -> ImageDocument:
        data = dict(doc)
        data["PHash"] = phash_from_hex(str(data["PHash"]))
        return cls.model_validate(data)

    def to_rest(self, url: str | None = None, thumbnail_url: str | None = None) -> dict[str, Any]:
        """The REST form: the pHash as an unsigned 64-bit JSON integer, links as the api sees them."""
        doc = self.model_dump(mode="json")
        if url is not None:
            doc["URL"] = url
        if thumbnail_url is not None:
            doc["ThumbnailURL"] = thumbnail_url
        return doc

    def to_json_line(self) -> str:
        return json.dumps(self.to_index(), separators=(",", ":"), sort_keys=True)
