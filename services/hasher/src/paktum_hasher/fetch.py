"""Get a post's bytes: local files for `paktum import`; booru downloads arrive with the scraper issue."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote, urlsplit

from paktum_common.errors import BadPostError, SourceReadError
from paktum_common.models import Post

LOCAL_SOURCE = "local"


async def fetch_bytes(post: Post, max_bytes: int) -> bytes:
    url = urlsplit(post.file_url)
    if url.scheme == "file":
        if post.source != LOCAL_SOURCE:
            # Only our own importer may point at the disk; a scraped post never may.
            raise BadPostError(f"file URL from source {post.source!r} refused: {post.file_url}")
        return await asyncio.to_thread(_read_file, Path(unquote(url.path)), max_bytes)
    raise BadPostError(f"unsupported file URL scheme {url.scheme!r}: {post.file_url}")


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SourceReadError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise SourceReadError(f"{path} is larger than {max_bytes} bytes (PAKTUM_MAX_FILE_BYTES)")
    return data
