"""Every record that crosses a process, each with the one place it is written and read.

Posts (scraper, import, upload -> hasher), image documents (the index's record), scrape requests (api ->
scraper) and their outcomes, dead letters; the media types Paktum stores and serves; the local-source marker.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from paktum_common.errors import BadPostError, InvalidEditError
from paktum_common.phash import Symmetry

PHASH_MAX = (1 << 64) - 1

# The source name of posts made from files on this machine (`paktum import`): the only posts whose file URL
# may be a file:// URL. Anything else reaching the stream with a file URL is refused.
LOCAL_SOURCE = "local"


@dataclass(frozen=True)
class MediaType:
    content_type: str
    video: bool = False  # a video: the hasher indexes its first frame (through ffmpeg)


# Every file extension Paktum accepts, stores and serves, with its Content-Type (named here rather than
# guessed from the system's mime table, which differs between machines).
MEDIA_TYPES: dict[str, MediaType] = {
    "jpg": MediaType("image/jpeg"),
    "jpeg": MediaType("image/jpeg"),
    "jpe": MediaType("image/jpeg"),
    "png": MediaType("image/png"),
    "gif": MediaType("image/gif"),
    "webp": MediaType("image/webp"),
    "bmp": MediaType("image/bmp"),
    "tif": MediaType("image/tiff"),
    "tiff": MediaType("image/tiff"),
    "avif": MediaType("image/avif"),
    "webm": MediaType("video/webm", video=True),
    "mp4": MediaType("video/mp4", video=True),
    "m4v": MediaType("video/mp4", video=True),
}
VIDEO_EXTENSIONS = frozenset(ext for ext, media in MEDIA_TYPES.items() if media.video)


def extension_of(name: str) -> str:
    """The lower-case extension of a file name or URL path ("" when it has none)."""
    last = name.rpartition("/")[2]
    return last.rpartition(".")[2].lower() if "." in last else ""


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


# Keys that make a query term a filter, not a tag: an edited tag spelt like one could never be searched for.
_FILTER_KEYS = ("rating", "order", "width", "height", "size", "added")
MAX_TAG_LENGTH = 200  # the search language's longest term


def edited_tag(raw: str) -> str:
    """A tag as an owner may set it: normalised like scraped tags, and searchable in the query language."""
    names = normalize_tags([raw]) if isinstance(raw, str) else []
    if len(names) != 1:
        raise InvalidEditError(f"not a tag: {raw!r}")
    tag = names[0]
    key, colon, _ = tag.partition(":")
    if len(tag) > MAX_TAG_LENGTH:
        raise InvalidEditError(f"a tag is at most {MAX_TAG_LENGTH} characters, got {len(tag)}")
    if tag[0] in "-~" or any(c in tag for c in '*,"') or (colon and key in _FILTER_KEYS):
        raise InvalidEditError(
            f'not a tag: {raw!r} (a tag cannot start with - or ~, contain * , or ", or start with {key}:)'
        )
    return tag


class TagEdit(BaseModel):
    """What an owner changed on one image, remembered in Redis (keys.TAG_EDITS) so that a later scrape or
    import of the same file does not undo it: tags added, tags removed, and the rating, all winning over
    what a source says."""

    model_config = ConfigDict(frozen=True)

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    rating: Rating | None = None

    def then(self, later: TagEdit) -> TagEdit:
        """This edit followed by a later one: the later wins where they disagree."""
        return TagEdit(
            add=tuple(dict.fromkeys([*(t for t in self.add if t not in later.remove), *later.add])),
            remove=tuple(dict.fromkeys([*(t for t in self.remove if t not in later.add), *later.remove])),
            rating=later.rating or self.rating,
        )

    def apply(self, doc: ImageDocument) -> ImageDocument:
        """The document with this edit applied over whatever tags and rating it came with."""
        removed = set(self.remove)
        tags = list(dict.fromkeys([*(t for t in doc.Tags if t not in removed), *self.add]))
        rating = self.rating or doc.Rating
        if tags == doc.Tags and rating == doc.Rating:
            return doc
        return doc.model_copy(update={"Tags": tags, "Tagstring": " ".join(tags), "Rating": rating})

    def to_redis(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_redis(cls, value: str | bytes) -> TagEdit:
        return cls.model_validate_json(value)


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
    """An indexed image. Field names are the original Paktum's, so existing clients keep working.

    The links (`URL`, `ThumbnailURL`) are not stored: they depend on where and how the api serves the
    files (its public URL, imgproxy), so the api makes them as it answers (`to_rest`). Documents indexed
    before carry them and they are ignored on reading.
    """

    model_config = ConfigDict(frozen=True)

    ID: str
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
    # The pHashes the picture also matches by (mirrored, rotated, flattened on the other background): the
    # slots of paktum_common.phash. Empty for images indexed before they were computed. Not shown to clients.
    PHashAlternates: tuple[int, ...] = ()
    # Whether the picture is symmetric, and its symmetric hashes (paktum_common.phash.Symmetry): empty for images
    # hashed before they were computed, which are then matched by their pHashes alone. Not shown to clients.
    Symmetric: bool = False
    PHashSymmetric: tuple[int, ...] = ()
    # The pHash block's coefficients as signed bytes, then the picture's hue mark, in hex (paktum_common.dct_hash
    # .signature, paktum_common.hues): what tells a pair near by chance from a copy (paktum_common.phash.match).
    # Empty for images hashed before signatures, without the hue mark for those hashed before hue marks. Not shown.
    PHashSignature: str = Field("", pattern=r"^([0-9a-f]{126}([0-9a-f]{26})?)?$")

    @property
    def added_seconds(self) -> int:
        return int(self.Added)

    @property
    def signature(self) -> bytes:
        return bytes.fromhex(self.PHashSignature)

    @property
    def symmetry(self) -> Symmetry | None:
        return Symmetry(self.Symmetric, self.PHashSymmetric) if self.PHashSymmetric else None

    def to_index(self) -> dict[str, Any]:
        """The index form: the pHash as 16 hex digits, never a JSON number (a double would corrupt it)."""
        doc = self.model_dump(mode="json")
        doc["PHash"] = phash_to_hex(self.PHash)
        doc["PHashAlternates"] = [phash_to_hex(h) for h in self.PHashAlternates]
        doc["PHashSymmetric"] = [phash_to_hex(h) for h in self.PHashSymmetric]
        return doc

    def to_index_json(self) -> str:
        """`to_index` as compact JSON, serialised by pydantic's core (a quarter of the time of json.dumps)."""
        body = self.model_dump_json(exclude={"PHash", "PHashAlternates", "PHashSymmetric"})
        alternates = ",".join(f'"{phash_to_hex(h)}"' for h in self.PHashAlternates)
        symmetric = ",".join(f'"{phash_to_hex(h)}"' for h in self.PHashSymmetric)
        return (
            f'{body[:-1]},"PHash":"{phash_to_hex(self.PHash)}","PHashAlternates":[{alternates}],'
            f'"PHashSymmetric":[{symmetric}]}}'
        )

    @classmethod
    def from_index(cls, doc: dict[str, Any]) -> ImageDocument:
        data = dict(doc)
        data["PHash"] = phash_from_hex(str(data["PHash"]))
        data["PHashAlternates"] = tuple(phash_from_hex(str(h)) for h in data.get("PHashAlternates") or ())
        data["PHashSymmetric"] = tuple(phash_from_hex(str(h)) for h in data.get("PHashSymmetric") or ())
        return cls.model_validate(data)

    def to_rest(self, url: str, thumbnail_url: str) -> dict[str, Any]:
        """The REST form: the pHash as an unsigned 64-bit JSON integer, the links as the api serves them,
        in the original's field order."""
        doc = self.model_dump(mode="json", exclude={"PHashAlternates", "Symmetric", "PHashSymmetric", "PHashSignature"})
        return {"ID": doc.pop("ID"), "URL": url, "ThumbnailURL": thumbnail_url, **doc}

    def to_json_line(self) -> str:
        return json.dumps(self.to_index(), separators=(",", ":"), sort_keys=True)


class ScrapeRequest(BaseModel):
    """A scrape asked for through the api (startScrape): tag queries, one per line, and a source (or the default)."""

    model_config = ConfigDict(frozen=True)

    queries: str  # one query per line, tags separated by spaces
    source: str = ""  # names separated by commas; empty: the scraper's PAKTUM_SCRAPE_SOURCE
    requested: int = Field(default_factory=lambda: int(time.time()))

    def to_stream(self) -> dict[str, str]:
        return {"queries": self.queries, "source": self.source, "requested": str(self.requested)}

    @classmethod
    def from_stream(cls, fields: dict[str, str]) -> ScrapeRequest:
        """Lenient on purpose: a malformed request is answered with an outcome, never dropped."""
        requested = fields.get("requested", "")
        return cls(
            queries=fields.get("queries", ""),
            source=fields.get("source", ""),
            requested=int(requested) if requested.isdecimal() else 0,
        )

    def sources(self, default: list[str]) -> list[str]:
        """The sources the request names, else `default` (PAKTUM_SCRAPE_SOURCE)."""
        return _names(self.source) or list(default)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


ScrapeStatus = Literal["done", "failed", "rejected"]


class ScrapeOutcome(BaseModel):
    """What became of a scrape request: written to the results stream as the request is acknowledged."""

    model_config = ConfigDict(frozen=True)

    request: str  # the request's stream entry ID
    status: ScrapeStatus  # done: every query ran; failed: some query failed; rejected: the request is wrong
    reason: str = ""
    queries: str = ""
    source: str = ""
    requested: int = 0
    found: int = 0
    published: int = 0
    query_errors: int = 0
    deliveries: int = 1
    finished: int = Field(default_factory=lambda: int(time.time()))

    def to_stream(self) -> dict[str, str]:
        return {key: str(value) for key, value in self.model_dump().items()}

    @classmethod
    def from_stream(cls, fields: dict[str, str]) -> ScrapeOutcome:
        return cls.model_validate(fields)


class DeadLetter(BaseModel):
    """An ingest entry that will never be indexed, with the reason: the original fields, kept as they were."""

    model_config = ConfigDict(frozen=True)

    entry_id: str
    deliveries: int
    reason: str
    failed_at: int = Field(default_factory=lambda: int(time.time()))
    fields: dict[str, str] = Field(default_factory=dict)  # the entry as published (a post: {"post": JSON})
    errors: list[str] = Field(default_factory=list)  # why each failed delivery failed, oldest first

    def to_stream(self) -> dict[str, str]:
        record = dict(self.fields)
        record.update(
            {
                "entry_id": self.entry_id,
                "deliveries": str(self.deliveries),
                "reason": self.reason,
                "failed_at": str(self.failed_at),
                "errors": json.dumps(self.errors),
            }
        )
        return record

    @classmethod
    def from_stream(cls, record: dict[str, str]) -> DeadLetter:
        own = {"entry_id", "deliveries", "reason", "failed_at", "errors"}
        try:
            errors = [str(e) for e in json.loads(record.get("errors") or "[]")]
        except (ValueError, TypeError):
            errors = []
        return cls(
            entry_id=record.get("entry_id", ""),
            deliveries=int(record.get("deliveries", "0") or 0),
            reason=record.get("reason", ""),
            failed_at=int(record.get("failed_at", "0") or 0),
            fields={k: v for k, v in record.items() if k not in own},
            errors=errors,
        )
