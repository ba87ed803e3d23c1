"""Moebooru (yande.re, konachan.com): `/post.json`, paged by `id:<N` like Danbooru 1."""

from __future__ import annotations

from typing import Any

from paktum_common.contracts import Post
from paktum_scraper.sources.base import Page, Skipped, Source


class MoebooruSource(Source):
    api = "moebooru"
    page_size = 100
    credential_names = ("login", "password_hash")

    def page_request(self, tags: list[str], before_id: int | None) -> tuple[str, dict[str, str]]:
        terms = [*tags, f"id:<{before_id}"] if before_id else list(tags)
        params = {"tags": " ".join(terms), "limit": str(self.page_size), "page": "1"}
        if self.config.has_credentials:
            params["login"] = self.config.user
            params["password_hash"] = self.config.api_key
        return "post.json", params

    def parse_page(self, body: Any) -> Page:
        return self.page_from_json_list(body, "reason", "message")

    def parse_post(self, item: dict[str, Any]) -> Post | Skipped:
        post_id = int(str(item["id"]))
        if item.get("status") == "deleted":
            return Skipped(str(post_id), "deleted", "the site marks the post deleted")
        return self.make_post(
            source_id=post_id,
            md5=item.get("md5"),
            file_url=item.get("file_url"),
            rating=item.get("rating"),
            tags=item.get("tags"),
            page_url=f"{self.base_url}post/show/{post_id}",
            width=item.get("width"),
            height=item.get("height"),
        )
