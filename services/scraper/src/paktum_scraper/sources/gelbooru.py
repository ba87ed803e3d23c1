"""Gelbooru 0.2 DAPI (gelbooru.com, safebooru.org and other Gelbooru-compatible sites), JSON flavour."""

from __future__ import annotations

from typing import Any

from paktum_common.contracts import Post
from paktum_scraper.sources.base import Page, PageError, Skipped, Source


class GelbooruSource(Source):
    api = "gelbooru"
    page_size = 100
    credential_names = ("user_id", "api_key")

    def page_request(self, tags: list[str], before_id: int | None) -> tuple[str, dict[str, str]]:
        # `id:<N` instead of pid: the DAPI refuses offsets past 20000 posts, an id bound has no such limit.
        terms = [*tags, f"id:<{before_id}"] if before_id else list(tags)
        params = {
            "page": "dapi",
            "s": "post",
            "q": "index",
            "json": "1",
            "limit": str(self.page_size),
            "pid": "0",
            "tags": " ".join(terms),
        }
        if self.config.has_credentials:
            params["user_id"] = self.config.user
            params["api_key"] = self.config.api_key
        return "index.php", params

    def parse_page(self, body: Any) -> Page:
        if body is None:
            return Page()  # Gelbooru 0.2.0 sites (safebooru.org) answer "no results" with an empty body
        if isinstance(body, list):
            return self.page_from_items(body)  # 0.2.0 sites: a bare list of posts
        if not isinstance(body, dict):
            raise PageError(f"expected a JSON object or list, got {type(body).__name__}")
        if "post" not in body and "@attributes" not in body:
            raise PageError(f"not a DAPI post list (keys: {', '.join(sorted(body)) or 'none'})")
        attributes = body.get("@attributes")
        total = attributes.get("count") if isinstance(attributes, dict) else None
        items = body.get("post", [])  # 0.2.5 omits "post" when nothing matches
        if isinstance(items, dict):
            items = [items]  # and some converters give a lone post as an object
        if not isinstance(items, list):
            raise PageError(f"'post' is a {type(items).__name__}, not a list")
        return self.page_from_items(items, total if isinstance(total, int) else None)

    def parse_post(self, item: dict[str, Any]) -> Post | Skipped:
        post_id = int(str(item["id"]))
        file_url = item.get("file_url")
        if not file_url and item.get("directory") is not None and item.get("image"):
            # 0.2.0 sites list the file by directory and name only.
            file_url = f"images/{item['directory']}/{item['image']}"
        return self.make_post(
            source_id=post_id,
            md5=item.get("md5") or item.get("hash"),  # 0.2.5 says md5, 0.2.0 says hash
            file_url=file_url,
            rating=item.get("rating"),
            tags=item.get("tags"),
            page_url=f"{self.base_url}index.php?page=post&s=view&id={post_id}",
            width=item.get("width"),
            height=item.get("height"),
        )
