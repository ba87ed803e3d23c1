"""`paktum reindex`: copy every document from one search backend to another, e.g. SQLite to Meilisearch."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from paktum_common.search import SearchBackend, open_search
from paktum_common.settings import Settings


def settings_for(settings: Settings, search_url: str) -> Settings:
    # A fresh object, not a copy: a copy would carry the cached effective_search_url along.
    return Settings(**{**settings.model_dump(exclude={"search_url"}), "search_url": search_url})


async def reindex(settings: Settings, source_url: str, target_url: str, batch: int, out: TextIO = sys.stderr) -> int:
    """Copy in pages of `batch`, reporting progress per page; the number of documents copied."""
    source = open_search(settings_for(settings, source_url))
    target = open_search(settings_for(settings, target_url))
    try:
        return await _copy(source, target, batch, out)
    finally:
        await source.close()
        await target.close()


async def _copy(source: SearchBackend, target: SearchBackend, batch: int, out: TextIO) -> int:
    total = await source.count()
    await target.ping()  # fail before reading anything when the target cannot take it
    started = time.monotonic()
    copied = 0
    async for page in source.export(batch):
        await target.add_documents(page)
        copied += len(page)
        share = f" ({100 * copied // total}%)" if total else ""
        print(f"paktum reindex: {copied}/{total} documents{share}", file=out, flush=True)
    seconds = time.monotonic() - started
    rate = f", {copied / seconds:.0f} documents/s" if seconds > 0 and copied else ""
    print(f"paktum reindex: copied {copied} documents in {seconds:.1f}s{rate}; the target now holds "
          f"{await target.count()}", file=out, flush=True)  # fmt: skip
    return copied
