"""e621 (and e926): `/posts.json` wrapped in {"posts": [...]}, file details nested, tags by category."""

from __future__ import annotations

from typing import Any

from paktum_common.contracts import Post
from paktum_scraper.sources.base import Page, PageError, Skipped
from paktum_scraper.sources.danbooru import DanbooruSource


class E621Source(DanbooruSource):
    """Danbooru's request (e621 runs a fork of it); its own answer shape."""

    api = "e621"
    page_size = 320  # the API's maximum

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
