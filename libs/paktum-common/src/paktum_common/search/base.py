"""The search interface every backend implements, and the factory that picks one from settings."""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from paktum_common.contracts import ImageDocument
from paktum_common.errors import PaktumError
from paktum_common.search.query import NumericFilter, Order, SearchQuery
from paktum_common.settings import Settings

log = logging.getLogger("paktum.search")


@dataclass(frozen=True)
class SearchPage:
    hits: list[ImageDocument]
    total: int


@dataclass(frozen=True)
class TagCount:
    """A tag and the number of indexed images that have it (autocomplete)."""

    name: str
    count: int


TAG_LIMIT_MAX = 50


class SearchBackend(abc.ABC):
    """An index of image documents. Adding a document whose ID exists replaces it."""

    @abc.abstractmethod
    async def add_documents(self, docs: Sequence[ImageDocument]) -> None: ...

    @abc.abstractmethod
    async def get_documents(self, ids: Sequence[str]) -> dict[str, ImageDocument]: ...

    async def get_document(self, doc_id: str) -> ImageDocument | None:
        return (await self.get_documents([doc_id])).get(doc_id)

    @abc.abstractmethod
    async def delete_documents(self, ids: Sequence[str]) -> None: ...

    @abc.abstractmethod
    async def search(self, query: SearchQuery, limit: int, offset: int = 0) -> SearchPage: ...

    @abc.abstractmethod
    async def count(self) -> int: ...

    @abc.abstractmethod
    async def tags(self, prefix: str, limit: int) -> list[TagCount]:
        """The `limit` tags starting with `prefix` (already normalised) that most images have, most used first.

        Ties in count go by tag name. `limit` is at most TAG_LIMIT_MAX (the caller checks).
        """

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise SearchUnavailableError when the backend cannot answer."""

    async def matching_ids(self, query: SearchQuery, batch: int = 500) -> AsyncIterator[list[str]]:
        """The IDs of every hit of `query`, `batch` at a time, oldest first, each once.

        Keyset pages on `added` rather than deep offsets (which cost the whole offset on every backend): each
        page asks for hits added at or after the last page's newest second, skipping those of that second
        already returned. Images added meanwhile come last or not at all; an image removed meanwhile from the
        second being paged can make one hit of it be skipped.
        """
        after: int | None = None
        ties = 0  # hits already returned that were added in the second `after`
        while True:
            numeric = query.numeric if after is None else (*query.numeric, NumericFilter("added", ">=", after))
            page = await self.search(replace(query, numeric=numeric, order=Order.added_asc), batch, ties)
            if not page.hits:
                return
            yield [hit.ID for hit in page.hits]
            if len(page.hits) < batch:
                return
            newest = page.hits[-1].added_seconds
            run = sum(1 for hit in page.hits if hit.added_seconds == newest)
            ties = ties + run if newest == after else run
            after = newest

    def export(self, batch: int = 1000) -> AsyncIterator[list[ImageDocument]]:
        """Every document, `batch` at a time (an async generator in the backends that have one)."""
        raise NotImplementedError(f"{type(self).__name__} cannot export its documents")

    async def warm(self) -> None:  # noqa: B027 - most backends have nothing to prepare
        """Do now what the first search would do at its own cost (the embedded backend loads its index)."""

    async def close(self) -> None:  # noqa: B027 - most backends hold nothing to close
        pass


def open_search(settings: Settings) -> SearchBackend:
    url = settings.effective_search_url
    if url.startswith("sqlite:///"):
        from paktum_common.search.sqlite import SqliteSearch

        return SqliteSearch(url.removeprefix("sqlite:///"), documents_kept=settings.search_documents_kept)
    if url.startswith(("http://", "https://")):
        from paktum_common.search.meili import MeiliSearch

        if settings.meili_key is None:
            log.info("PAKTUM_MEILI_KEY is not set: talking to Meilisearch at %s without a key", url)
        return MeiliSearch(
            url,
            settings.meili_key.get_secret_value() if settings.meili_key else None,
            index=settings.meili_index,
            timeout=settings.meili_timeout_seconds,
            task_timeout=settings.meili_task_timeout_seconds,
        )
    raise PaktumError(f"unsupported PAKTUM_SEARCH_URL {url!r}: use sqlite:///path or http(s)://meilisearch-host:7700")
