"""The one way every service opens Redis."""

from __future__ import annotations

import re

from redis.asyncio import Redis


def connect(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True, health_check_interval=30)


def as_text(value: str | bytes) -> str:
    """A reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else value


def redacted(url: str) -> str:
    """A Redis URL fit for a log line: its password (userinfo or `password=` query) replaced by `***`."""
    url = re.sub(r"(//[^/@:]*):[^/]*@", r"\1:***@", url, count=1)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)
