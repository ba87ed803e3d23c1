"""The production search backend: Meilisearch, over its HTTP API, with the index set up by migrations.

Random order: Meilisearch cannot sort randomly, so a random page is drawn as the SQLite backend
draws it: the exact total of hits first, then `limit` distinct positions sampled uniformly from
0..total-1, read in one multi-search request as (offset, limit) runs over the index's own order.
Positions that fall on the first page come from the request that counted the total.

Tag counts: one facet search on `Tags` (not the derived TagPrefixes, whose values are prefixes, not tags).
Its prefix match runs on Meilisearch's normalized values, so what it answers is narrowed to the tags that
start with the prefix as written, then ranked by count and name here. The counts are Meilisearch's own,
exact over all documents. It answers the FACET_VALUES most used matching tags (meili_migrations), so
every tag used more often than the least used one answered is there; only when more than FACET_VALUES
tags match and the last of `limit` ties with that least used one can a tie of the same count with a
smaller name be missing (Meilisearch keeps the later names of a tie).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pydantic import ValidationError

from paktum_common.contracts import ImageDocument
from paktum_common.errors import SearchUnavailableError
from paktum_common.search.base import SearchBackend, SearchPage, TagCount
from paktum_common.search.meili_client import MeiliClient, MeiliError
from paktum_common.search.meili_migrations import check_version, migrate
from paktum_common.search.meili_query import (
    ADDED_TS,
    ID,
    TAG_PREFIXES,
    facet_search_request,
    position_queries,
    quote_list,
    search_request,
    tag_prefixes,
)
from paktum_common.search.query import Order, SearchQuery

# What we read back: the document's own fields, never the derived ones only the index needs.
FIELDS: tuple[str, ...] = tuple(ImageDocument.model_fields)
DERIVED = (ADDED_TS, TAG_PREFIXES)
# Facet search honours sortFacetValuesBy (most used first) from 1.7; before, it answers the first values by name.
TAG_COUNTS_SINCE = (1, 7)


def to_meili(doc: ImageDocument) -> dict[str, Any]:
    """The one place a document becomes a Meilisearch document: the index form plus derived fields."""
    body = doc.to_index()
    body[ADDED_TS] = doc.added_seconds
    body[TAG_PREFIXES] = tag_prefixes(doc.Tags)
    return body


def from_meili(hit: Any) -> ImageDocument:
    if not isinstance(hit, dict):
        raise MeiliError(f"meilisearch returned a document that is not an object: {hit!r}"[:300])
    try:
        return ImageDocument.from_index({key: hit[key] for key in FIELDS if key in hit})
    except (KeyError, ValueError, ValidationError) as exc:
        raise MeiliError(f"meilisearch returned a document Paktum cannot read ({hit.get('ID')!r}): {exc}") from exc


class MeiliSearch(SearchBackend):
    def __init__(
        self,
        url: str,
        key: str | None = None,
        index: str = "images",
        timeout: float = 10.0,
        task_timeout: float = 300.0,
        batch: int = 1000,
    ) -> None:
        self.client = MeiliClient(url, key, timeout=timeout, task_timeout=task_timeout)
        self.index = index
        self.batch = batch
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self.version: tuple[int, int] | None = None  # (major, minor) once ready, if the key may read it

    async def ready(self) -> None:
        """Apply the index migrations once per process; until they succeed, every call tries again."""
        if self._ready:
            return
        async with self._ready_lock:
            if not self._ready:
                self.version = await check_version(self.client)
                await migrate(self.client, self.index)
                self._ready = True

    @property
    def _path(self) -> str:
        return f"/indexes/{self.index}"

    async def _request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            return await self.client.request(method, path, body, params)
        except MeiliError as exc:
            if exc.code == "index_not_found":
                self._ready = False  # deleted under us: the next call sets it up again
            raise

    async def add_documents(self, docs: Sequence[ImageDocument]) -> None:
        if not docs:
            return
        await self.ready()
        # Enqueue every batch first: Meilisearch merges consecutive additions into one indexing run.
        answers = []
        for start in range(0, len(docs), self.batch):
            body = [to_meili(doc) for doc in docs[start : start + self.batch]]
            answers.append(await self.client.request("POST", f"{self._path}/documents?primaryKey={ID}", body))
        for answer in answers:
            await self.client.wait_task(answer, f"add documents to {self.index}")

    async def get_documents(self, ids: Sequence[str]) -> dict[str, ImageDocument]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        await self.ready()
        found: dict[str, ImageDocument] = {}
        for start in range(0, len(wanted), self.batch):
            chunk = wanted[start : start + self.batch]
            body = {"filter": [f"{ID} IN {quote_list(chunk)}"], "fields": list(FIELDS), "limit": len(chunk)}
            answer = await self._request("POST", f"{self._path}/documents/fetch", body)
            for hit in _list(answer, "results"):
                doc = from_meili(hit)
                found[doc.ID] = doc
        return found

    async def delete_documents(self, ids: Sequence[str]) -> None:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return
        await self.ready()
        await self.client.run_task(
            "POST", f"{self._path}/documents/delete-batch", wanted, f"delete documents from {self.index}"
        )

    async def search(self, query: SearchQuery, limit: int, offset: int = 0) -> SearchPage:
        # A random page is drawn from all hits; the offset only says whether any are left.
        random_order = query.order is Order.random
        body, skip = search_request(query, limit, 0 if random_order else offset, FIELDS)
        await self.ready()
        answer = await self._request("POST", f"{self._path}/search", body)
        total = _total(answer)
        hits = [from_meili(hit) for hit in _list(answer, "hits")]
        if not random_order:
            return SearchPage(hits[skip : skip + limit], total)
        if total == 0 or offset >= total:
            return SearchPage([], total)
        if total <= len(hits):
            random.shuffle(hits)
            return SearchPage(hits, total)
        return SearchPage(await self._sample(query, limit, total, hits), total)

    async def _sample(
        self, query: SearchQuery, limit: int, total: int, first_page: list[ImageDocument]
    ) -> list[ImageDocument]:
        positions = random.sample(range(total), min(limit, total))
        picked = {p: first_page[p] for p in positions if p < len(first_page)}
        rest = [p for p in positions if p >= len(first_page)]
        if rest:
            queries = position_queries(self.index, query, rest, FIELDS)
            answer = await self._request("POST", "/multi-search", {"queries": queries})
            runs = _list(answer, "results")
            if len(runs) != len(queries):
                raise MeiliError(f"meilisearch answered {len(queries)} searches with {len(runs)} results")
            for sub, run in zip(queries, runs, strict=True):
                for step, hit in enumerate(_list(run, "hits")):
                    picked[sub["offset"] + step] = from_meili(hit)
        # A write between the two requests can shift positions; never show one image twice.
        unique = list({doc.ID: doc for doc in picked.values()}.values())
        random.shuffle(unique)
        return unique

    async def tags(self, prefix: str, limit: int) -> list[TagCount]:
        await self.ready()
        if self.version is not None and self.version < TAG_COUNTS_SINCE:
            raise SearchUnavailableError(
                f"tag counts need Meilisearch {'.'.join(map(str, TAG_COUNTS_SINCE))} or newer, found "
                f"{'.'.join(map(str, self.version))}: before it, facet search answers tags by name, not by use"
            )
        answer = await self._request("POST", f"{self._path}/facet-search", facet_search_request(prefix))
        return top_tags(_list(answer, "facetHits"), prefix, limit)

    async def count(self) -> int:
        await self.ready()
        answer = await self._request("GET", f"{self._path}/stats")
        number = answer.get("numberOfDocuments") if isinstance(answer, dict) else None
        if not isinstance(number, int):
            raise MeiliError(f"meilisearch stats without numberOfDocuments: {answer!r}"[:300])
        return number

    async def ping(self) -> None:
        answer = await self.client.request("GET", "/health")
        if not isinstance(answer, dict) or answer.get("status") != "available":
            raise MeiliError(f"meilisearch is not available: {answer!r}"[:300])
        await self.ready()

    async def export(self, batch: int = 1000) -> AsyncIterator[list[ImageDocument]]:
        """Every document, `batch` at a time, in the index's own order (for reindex and cleanup)."""
        await self.ready()
        offset = 0
        while True:
            params = {"offset": offset, "limit": batch, "fields": ",".join(FIELDS)}
            answer = await self._request("GET", f"{self._path}/documents", params=params)
            docs = [from_meili(hit) for hit in _list(answer, "results")]
            if docs:
                yield docs
            offset += len(docs)
            if len(docs) < batch:
                return

    async def close(self) -> None:
        await self.client.close()


def top_tags(hits: list[Any], prefix: str, limit: int) -> list[TagCount]:
    """The `limit` facet hits whose value starts with `prefix` exactly, most used first, ties by name."""
    counts: dict[str, int] = {}
    for hit in hits:
        value = hit.get("value") if isinstance(hit, dict) else None
        count = hit.get("count") if isinstance(hit, dict) else None
        if not isinstance(value, str) or not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise MeiliError(f"meilisearch answered a facet hit Paktum cannot read: {hit!r}"[:300])
        if count and value.startswith(prefix):
            counts.setdefault(value, count)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [TagCount(name, count) for name, count in ranked[:limit]]


def _list(answer: Any, key: str) -> list[Any]:
    value = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(value, list):
        raise MeiliError(f"meilisearch answered without a list of {key}: {answer!r}"[:300])
    return value


def _total(answer: Any) -> int:
    total = answer.get("totalHits") if isinstance(answer, dict) else None
    if not isinstance(total, int):
        raise MeiliError(f"meilisearch answered a page search without totalHits: {answer!r}"[:300])
    return total
