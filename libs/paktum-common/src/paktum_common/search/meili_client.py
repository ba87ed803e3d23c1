"""A thin async HTTP client for the parts of Meilisearch's API Paktum uses, with its errors made ours.

Every write in Meilisearch is an asynchronous task; `wait_task` polls it to the end and raises when
it failed, so no caller can mistake an enqueued write for a done one.

Why not the async `meilisearch-python-sdk` (PyPI): Paktum uses seven endpoints (documents add/fetch/delete,
search, multi-search, settings, tasks), and what it needs around them is its own either way: every error
as a SearchUnavailableError with Meilisearch's code, a task awaited to the end, one timeout per request from
the settings. With the SDK that is the same wrapper over a larger client whose models change with each
Meilisearch release; here no Meilisearch runs, so tests/integration/test_meili_wire.py pins the exact
requests this file sends against recorded answers, which a client library's internals would hide. Revisit
if Paktum needs much more of the API (e.g. tenant tokens, snapshots).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from paktum_common.errors import SearchUnavailableError

# Codes for a search Meilisearch cannot run. The translation only writes well-formed filters (its tests prove
# the quoting), so these mean the index is not set up as Paktum's migrations left it: a server-side fault.
_REFUSED_SEARCH = {"invalid_search_filter", "invalid_search_sort", "invalid_document_filter"}
_FINISHED = {"succeeded", "failed", "canceled"}


class MeiliError(SearchUnavailableError):
    """Meilisearch answered with an error object, or a task ended without succeeding."""

    def __init__(self, message: str, code: str = "", kind: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.kind = kind
        self.status = status


class MeiliClient:
    def __init__(
        self,
        url: str,
        key: str | None,
        timeout: float = 10.0,
        task_timeout: float = 300.0,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.task_timeout = task_timeout
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def close(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One call; the parsed JSON answer, or a SearchUnavailableError (a MeiliError if it answered) saying why."""
        try:
            response = await self._http.request(method, path, json=body, params=params)
        except httpx.TimeoutException as exc:
            raise SearchUnavailableError(f"meilisearch at {self.url} did not answer {method} {path} in time") from exc
        except httpx.TransportError as exc:
            raise SearchUnavailableError(
                f"meilisearch at {self.url} is unreachable: {exc or type(exc).__name__}"
            ) from exc
        if response.status_code >= 400:
            raise _error_from(response, method, path)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise MeiliError(f"meilisearch answered {method} {path} with something not JSON", status=200) from exc

    async def wait_task(self, answer: Any, what: str) -> dict[str, Any]:
        """Poll the task an enqueuing call answered with until it ends; raise unless it succeeded."""
        if not isinstance(answer, dict) or not isinstance(answer.get("taskUid"), int):
            raise MeiliError(f"meilisearch answered {what} without a task: {answer!r}")
        uid = answer["taskUid"]
        deadline = time.monotonic() + self.task_timeout
        delay = 0.005
        while True:
            task = await self.request("GET", f"/tasks/{uid}")
            status = task.get("status") if isinstance(task, dict) else None
            if status in _FINISHED:
                break
            if time.monotonic() >= deadline:
                raise SearchUnavailableError(
                    f"meilisearch task {uid} ({what}) still {status} after {self.task_timeout:g}s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        if status != "succeeded":
            error = task.get("error") or {}
            raise MeiliError(
                f"meilisearch task {uid} ({what}) {status}: {error.get('message', 'no reason given')}",
                code=str(error.get("code", "")),
                kind=str(error.get("type", "")),
            )
        return task

    async def run_task(self, method: str, path: str, body: Any = None, what: str = "") -> dict[str, Any]:
        return await self.wait_task(await self.request(method, path, body), what or f"{method} {path}")


def _error_from(response: httpx.Response, method: str, path: str) -> Exception:
    try:
        error = response.json()
    except ValueError:
        error = None
    if not isinstance(error, dict):
        text = response.text[:200].strip() or response.reason_phrase
        return MeiliError(f"meilisearch answered {method} {path} with HTTP {response.status_code}: {text}",
                          status=response.status_code)  # fmt: skip
    code = str(error.get("code", ""))
    kind = str(error.get("type", ""))
    message = str(error.get("message", "no message"))
    if code in _REFUSED_SEARCH:
        message += " (were the index settings changed by hand? Paktum's migrations make these attributes usable)"
    if kind == "auth":
        message += " (check PAKTUM_MEILI_KEY)"
    return MeiliError(
        f"meilisearch answered {method} {path} with HTTP {response.status_code} {code}: {message}",
        code=code, kind=kind, status=response.status_code,
    )  # fmt: skip
