"""HTTP for one source: the shared rate limit, a User-Agent naming Paktum, retries with backoff, clear errors."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx

from paktum_common import metrics
from paktum_common.log import log_event
from paktum_common.settings import Settings
from paktum_scraper.ratelimit import RateLimiter
from paktum_scraper.sources.base import Page, PageError, Source, SourceAuthError, SourceQueryError

log = logging.getLogger("paktum.scraper")

HTTP_ERRORS = metrics.counter(
    "scraper", "http_errors_total", "Failed requests to a source, by HTTP status or failure kind.", ("source", "status")
)
MAX_THROTTLED = 20  # 429s in a row on one page before giving up on it
PAGES = metrics.counter("scraper", "pages_total", "Result pages fetched and read, per source.", ("source",))


def user_agent() -> str:
    try:
        release = version("paktum-scraper")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        release = "dev"
    return f"Paktum/{release} (self-hosted image server; paktum-scraper)"


class SourceClient:
    """Fetch and read pages of one source, politely: every request waits for the source's shared budget."""

    def __init__(self, source: Source, settings: Settings, limiter: RateLimiter, http: httpx.AsyncClient) -> None:
        self.source = source
        self.limiter = limiter
        self.http = http
        self.retries = settings.scrape_retries
        self.backoff = settings.scrape_backoff_seconds
        self.max_wait = settings.scrape_max_wait_seconds

    async def fetch_page(self, tags: list[str], before_id: int | None) -> Page:
        path, params = self.source.page_request(tags, before_id)
        url = self.source.base_url + path
        last = ""
        failures = throttled = 0  # a 429 is the site pacing us, not a failure: it has its own, larger budget
        while True:
            await self.limiter.acquire()
            wait: float | None = None
            slowed = False
            try:
                response = await self.http.get(url, params=params)
            except httpx.TimeoutException as exc:
                self._count("timeout")
                last = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                self._count("connection")
                last = f"connection failed: {exc or type(exc).__name__}"
            else:
                status = response.status_code
                if status in (401, 403):
                    self._count(str(status))
                    hint = self.source.auth_hint()
                    if status == 403:
                        hint += " (a 403 can also be the site's firewall refusing this address or User-Agent)"
                    raise SourceAuthError(f"{self.source.name} answered HTTP {status}: {hint}")
                if status == 429 or status >= 500:
                    self._count(str(status))
                    last = f"HTTP {status}"
                    wait = retry_after(response, self.max_wait)
                    if status == 429:
                        slowed = True
                        wait = wait if wait is not None else self._backoff(throttled)
                        # Everyone sharing this source waits, and this process keeps a slower pace afterwards.
                        self.limiter.slow_down()
                        await self.limiter.hold_off(wait)
                elif status >= 400:
                    self._count(str(status))
                    name = self.source.name
                    raise SourceQueryError(f"{name} rejected the query with HTTP {status}: {_reason(response)}")
                else:
                    try:
                        page = self.source.parse_page(decode_body(response))
                    except PageError as exc:
                        self._count("invalid")
                        last = str(exc)
                    else:
                        PAGES.labels(self.source.name).inc()
                        return page
            if slowed:
                throttled += 1
                if throttled > MAX_THROTTLED:
                    raise PageError(f"{self.source.name}: still answering 429 after {MAX_THROTTLED} waits")
            else:
                failures += 1
                if failures > self.retries:
                    raise PageError(f"{self.source.name}: page {_describe(before_id)} failed {failures} times: {last}")
            delay = wait if wait is not None else self._backoff(failures - 1)
            log_event(
                log, logging.WARNING, "page failed, retrying", source=self.source.name, tags=" ".join(tags),
                before=before_id or "", reason=last, failures=failures, throttled=throttled, wait_s=round(delay, 2),
            )  # fmt: skip
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        # Exponential with a little jitter, so replicas that failed together do not retry together.
        return min(self.backoff * (2**attempt) * (1 + random.random() * 0.25), self.max_wait)

    def _count(self, status: str) -> None:
        HTTP_ERRORS.labels(self.source.name, status).inc()


def retry_after(response: httpx.Response, cap: float) -> float | None:
    """Retry-After as seconds or an HTTP date, capped; None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), cap)


def decode_body(response: httpx.Response) -> Any:
    """JSON, or None for an empty body; an HTML page or broken JSON is a PageError naming what came back."""
    text = response.text.strip()
    if not text:
        return None
    content_type = response.headers.get("content-type", "")
    if "html" in content_type or text.startswith("<"):
        raise PageError(f"the site answered an HTML/XML page instead of JSON: {_title(text)}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PageError(f"malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc


def _title(text: str) -> str:
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    snippet = match.group(1) if match else text[:80]
    return " ".join(snippet.split())[:120] or "(no title)"


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return _title(response.text) if response.text.strip() else "(no body)"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("reason") or body.get("error") or body)[:300]
    return str(body)[:300]


def _describe(before_id: int | None) -> str:
    return f"below id {before_id}" if before_id else "one"
