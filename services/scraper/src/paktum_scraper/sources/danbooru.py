"""Danbooru 2 (danbooru.donmai.us and its mirrors): `/posts.json`, paged by `page=b<id>`."""

from __future__ import annotations

from typing import Any

from paktum_common.contracts import Post
from paktum_scraper.sources.base import Page, Skipped, Source


class DanbooruSource(Source):
    api = "danbooru"
    page_size = 200  # the API's maximum
    credential_names = ("login", "api_key")

    def page_request(self, tags: list[str], before_id: int | None) -> tuple[str, dict[str, str]]:
        # `page=b<id>`: posts below that id; numbered pages stop at page 1000 for most accounts.
        params = {"tags": " ".join(tags), "limit": str(self.page_size), "page": f"b{before_id}" if before_id else "1"}
        if self.config.has_credentials:
            params["login"] = self.config.user
            params["api_key"] = self.config.api_key
        return "posts.json", params

    def parse_page(self, body: Any) -> Page:
        return self.page_from_json_list(body, "message", "error")

    def parse_post(self, item: dict[str, Any]) -> Post | Skipped:
        post_id = int(str(item["id"]))
        # file_url and md5 are absent for posts the account may not see (banned artists, gold-only tags).
        return self.make_post(
            source_id=post_id,
            md5=item.get("md5"),
            file_url=item.get("file_url"),
            rating=item.get("rating"),
            tags=item.get("tag_string"),
            page_url=f"{self.base_url}posts/{post_id}",
            width=item.get("image_width"),
            height=item.get("image_height"),
        )
