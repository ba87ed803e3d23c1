"""e621 (and e926): `/posts.json` wrapped in {"posts": [...]}, file details nested, tags by category."""

from __future__ import annotations

from typing import Any

from paktum_common.models import Post
from paktum_scraper.sources.base import Page, PageError, Skipped, Source


class E621Source(Source):
    api = "e621"
    page_size = 320  # the API's maximum
    credential_names = ("login", "api_key")

    def page_request(self, tags: list[str], before_id: int | None) -> tuple[str, dict[str, str]]:
        params = {"tags": " ".join(tags), "limit": str(self.page_size), "page": f"b{before_id}" if before_id else "1"}
        if self.config.has_credentials:
            params["login"] = self.config.user
            params["api_key"] = self.config.api_key
        return "posts.json", params

    def parse_page(self, body: Any) -> Page:
        if isinstance(body, dict) and body.get("success") is False:
            raise PageError(f"the site answered an error: {body.get('message') or body.get('reason')}")
        if not isinstance(body, dict) or not isinstance(body.get("posts"), list):
            raise PageError('expected {"posts": [...]}')
        return self.page_from_items(body["posts"])

    def parse_post(self, item: dict[str, Any]) -> Post | Skipped:
        post_id = int(str(item["id"]))
        file = item.get("file")
        if not isinstance(file, dict):
            return Skipped(str(post_id), "malformed", "no 'file' object")
        if (item.get("flags") or {}).get("deleted"):
            return Skipped(str(post_id), "deleted", "the site marks the post deleted")
        groups = item.get("tags")
        if not isinstance(groups, dict):
            return Skipped(str(post_id), "malformed", "'tags' is not an object of tag lists by category")
        tags = [tag for group in groups.values() if isinstance(group, list) for tag in group]
        # file.url is null, md5 still given, for posts with a globally blacklisted tag when not logged in.
        return self.make_post(
            source_id=post_id,
            md5=file.get("md5"),
            file_url=file.get("url"),
            rating=item.get("rating"),
            tags=tags,
            page_url=f"{self.base_url}posts/{post_id}",
            width=file.get("width"),
            height=file.get("height"),
        )
