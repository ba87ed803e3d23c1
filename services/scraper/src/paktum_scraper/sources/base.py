"""The one interface every booru source implements, and the page of results it turns a response into."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

from paktum_common.contracts import MEDIA_TYPES, Post, Rating
from paktum_common.errors import BadPostError, PaktumError


class SourceError(PaktumError):
    """A source cannot answer a request; the message says why and what to do."""


class PageError(SourceError):
    """One page could not be read (malformed JSON, an HTML error page, the wrong shape, retries used up)."""


class SourceAuthError(SourceError):
    """The site refused us (401/403): credentials are missing or wrong."""


class SourceQueryError(SourceError):
    """The site rejected the query itself (a 4xx other than auth/rate limits): retrying cannot help."""


@dataclass(frozen=True)
class SourceConfig:
    name: str
    api: str
    url: str
    user: str = ""
    api_key: str = ""
    rate: float = 1.0  # requests per second, shared by every scraper process

    @property
    def has_credentials(self) -> bool:
        return bool(self.user and self.api_key)


@dataclass(frozen=True)
class Skipped:
    """A post the source listed but we cannot use, with a reason (a metric label) and the detail."""

    source_id: str
    reason: str
    detail: str


@dataclass
class Page:
    posts: list[Post] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)  # every post id listed, usable or not: paging and cursors
    total: int | None = None  # how many posts the query matches, when the site says

    @property
    def lowest_id(self) -> int:
        return min(self.ids)

    @property
    def highest_id(self) -> int:
        return max(self.ids)


class Source(abc.ABC):
    """A booru API: how to ask for one page of a query, and how to read the answer."""

    api: ClassVar[str]
    page_size: ClassVar[int] = 100
    # What the credentials are called on the site, for the 401/403 message.
    credential_names: ClassVar[tuple[str, str]] = ("user", "api_key")

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.name = config.name
        self.base_url = config.url.rstrip("/") + "/"

    @abc.abstractmethod
    def page_request(self, tags: list[str], before_id: int | None) -> tuple[str, dict[str, str]]:
        """Path (relative to the base URL) and parameters for the newest posts with an id below `before_id`."""

    @abc.abstractmethod
    def parse_page(self, body: Any) -> Page:
        """Read a decoded response (None for an empty body); raise PageError when it is not a page of posts."""

    @abc.abstractmethod
    def parse_post(self, item: dict[str, Any]) -> Post | Skipped:
        """One listed post onto our Post, or the reason it cannot be used."""

    def auth_hint(self) -> str:
        user, key = self.credential_names
        if self.config.has_credentials:
            return f"the site refused the {user} and {key} given for source {self.name!r}; check them"
        return (
            f'source {self.name!r} needs credentials: set "user" ({user}) and "api_key" ({key}) '
            f"for it in PAKTUM_SCRAPE_SOURCES"
        )

    def page_from_json_list(self, body: Any, *error_fields: str) -> Page:
        """A page that is a JSON list of posts, or an error object `{"success": false, <error_fields>...}`
        (Danbooru and Moebooru answer both ways)."""
        if isinstance(body, dict) and body.get("success") is False:
            reason = next((body[f] for f in error_fields if body.get(f)), None)
            raise PageError(f"the site answered an error: {reason}")
        if not isinstance(body, list):
            raise PageError(f"expected a JSON list of posts, got {type(body).__name__}")
        return self.page_from_items(body)

    def page_from_items(self, items: Iterable[Any], total: int | None = None) -> Page:
        page = Page(total=total)
        for item in items:
            if not isinstance(item, dict):
                raise PageError(f"expected a post object, got {type(item).__name__}")
            try:
                post_id = parse_id(item.get("id"))
            except BadPostError as exc:
                # Without an id we can neither page past the post nor name it: the page is unusable.
                raise PageError(f"a post without a usable id: {exc}") from exc
            page.ids.append(post_id)
            try:
                result = self.parse_post(item)
            except (BadPostError, ValueError, TypeError) as exc:
                result = Skipped(str(post_id), "malformed", str(exc))
            if isinstance(result, Skipped):
                page.skipped.append(result)
            else:
                page.posts.append(result)
        return page

    def make_post(
        self,
        *,
        source_id: int,
        md5: Any,
        file_url: Any,
        rating: Any,
        tags: Any,
        page_url: str,
        width: Any = None,
        height: Any = None,
    ) -> Post | Skipped:
        """The checks every source shares: a post needs a file URL, an md5 and a rating we know."""
        sid = str(source_id)
        if not file_url or not isinstance(file_url, str):
            return Skipped(sid, "no_file_url", "the site lists no file URL (deleted, banned or restricted post)")
        if not md5 or not isinstance(md5, str):
            return Skipped(sid, "no_md5", "the site states no md5")
        url = urljoin(self.base_url, file_url)  # some sites give protocol-relative or site-relative URLs
        if urlsplit(url).scheme not in ("http", "https"):
            # A site's answer never points a hasher at its own disk (file://) or anything but the web.
            return Skipped(sid, "unsafe_file_url", f"file URL is not http(s): {url}")
        ext = urlsplit(url).path.rpartition(".")[2].lower()
        if ext not in MEDIA_TYPES:
            return Skipped(sid, "unsupported_file", f"file type {ext!r} cannot be indexed: {url}")
        try:
            parsed_rating = Rating.parse(str(rating or ""))
        except BadPostError as exc:
            return Skipped(sid, "unknown_rating", str(exc))
        if isinstance(tags, str):
            tag_list = tags.split()
        elif isinstance(tags, list) and all(isinstance(t, str) for t in tags):
            tag_list = tags
        else:
            return Skipped(sid, "malformed", f"tags are neither a string nor a list of strings: {tags!r}")
        try:
            return Post(
                source=self.name,
                source_id=sid,
                md5=md5,
                file_url=url,
                tags=tag_list,
                rating=parsed_rating,
                page_url=page_url,
                width=_dimension(width),
                height=_dimension(height),
            )
        except ValueError as exc:
            return Skipped(sid, "malformed", str(exc).splitlines()[0] if str(exc) else repr(exc))


def parse_id(value: Any) -> int:
    """Post ids arrive as numbers on most sites and as strings on some (and in XML-to-JSON conversions)."""
    if isinstance(value, bool):
        raise BadPostError(f"post id {value!r} is not a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise BadPostError(f"post id {value!r} is not a number")
    if number < 1:
        raise BadPostError(f"post id {number} is not positive")
    return number


def _dimension(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
