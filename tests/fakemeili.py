"""A fake Meilisearch on loopback: the documented HTTP API, recording every request, for testing our side of the wire.

It is a test double of an outside system (Meilisearch cannot run on this machine). It keeps indexes,
documents, settings and tasks in memory and answers in the documented formats, built from the
bodies under tests/fixtures/meili/. It does not evaluate search filters or `q`: a search pages over
all documents of the index in insertion order, which is enough to check what we send and how we
read what comes back. What a filter matches is the live contract suite's job.

Facet search (without `q` or filter) it does evaluate, as Meilisearch documents and implements it: the
facet must be filterable; `facetQuery` is a prefix of the whole value after a lossy normalization (lower
case, compatibility forms and accents folded), so it finds values that do not start with the query as
written; the faceting settings decide the answer: `sortFacetValuesBy` "count" keeps the
`maxValuesPerFacet` (default 100) most used values, a tie going to the value met later in normalized
order, answered most used first; "alpha" (the default) answers the first values in normalized order.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import json
import re
import socket
import threading
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.meili_filter_grammar import read_quoted_list

FIXTURES = Path(__file__).parent / "fixtures" / "meili"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class _Index:
    primary_key: str | None
    created_at: float
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Task:
    uid: int
    index: str | None
    type: str
    error: dict[str, Any] | None
    details: dict[str, Any]
    polls: int = 0


def _stamp(when: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))
    return f"{whole}.{int((when % 1) * 1e9):09d}Z"


def _error(name: str, **replace: str) -> dict[str, Any]:
    body = fixture(f"error_{name}")
    for old, new in replace.items():
        body["message"] = body["message"].replace(old, new)
    return body


_INDEX = r"/indexes/(?P<index>[A-Za-z0-9_-]+)"


class FakeMeili:
    """Start with `start()`; `url` is where it listens; `requests` is everything it received, in order."""

    def __init__(self, key: str | None = None) -> None:
        self.key = key
        self.requests: list[Recorded] = []
        self.indexes: dict[str, _Index] = {}
        self.tasks: dict[int, _Task] = {}
        self.delay = 0.0  # seconds to sit on each request before answering
        self.version = ""  # the pkgVersion /version reports; empty: the fixture's
        self._scripted: list[tuple[str, str, int, Any]] = []
        self._failing_tasks: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.port = 0

    # -- control --------------------------------------------------------------------------------------

    def start(self, port: int | None = None) -> FakeMeili:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in one write, so no request waits on delayed ACKs.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake._connections.add(self.connection)

            def finish(self) -> None:
                with fake._lock:
                    fake._connections.discard(self.connection)
                super().finish()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = fake._handle(self.command, self.path, raw, dict(self.headers.items()))
                payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
                self.send_response(status)
                kind = "application/json" if not isinstance(body, bytes) else "text/html"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port if port is None else port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections, keeping the data, as a server that went down would."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections.clear()
        if self._thread:
            self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, method: str, path: str, status: int, body: Any) -> None:
        """Answer the next `method path` (path without query) with this status and body, once."""
        with self._lock:
            self._scripted.append((method, path, status, body))

    def fail_next_task(self, task_type: str, error: dict[str, Any]) -> None:
        """The next task of this type fails with this error object (changing nothing)."""
        with self._lock:
            self._failing_tasks.append((task_type, error))

    def calls(self, skip_tasks: bool = True) -> list[tuple[str, str]]:
        """(method, path) of every request, leaving out task polls unless asked."""
        return [(r.method, r.path) for r in self.requests if not (skip_tasks and r.path.startswith("/tasks/"))]

    def bodies(self, method: str, path: str) -> list[Any]:
        return [r.body for r in self.requests if r.method == method and r.path == path]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- the API --------------------------------------------------------------------------------------

    def _handle(self, method: str, target: str, raw: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        if self.delay:
            time.sleep(self.delay)
        parts = urlsplit(target)
        params = dict(parse_qsl(parts.query))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, {"message": "malformed JSON", "code": "malformed_payload", "type": "invalid_request",
                         "link": "https://docs.meilisearch.com/errors#malformed_payload"}  # fmt: skip
        with self._lock:
            lower = {k.lower(): v for k, v in headers.items()}
            self.requests.append(Recorded(method, parts.path, params, body, lower))
            for number, (m, p, status, answer) in enumerate(self._scripted):
                if m == method and p == parts.path:
                    del self._scripted[number]
                    return status, copy.deepcopy(answer)
            if self.key is not None:
                auth = lower.get("authorization")
                if auth is None:
                    return 401, _error("missing_authorization_header")
                if auth != f"Bearer {self.key}":
                    return 403, _error("invalid_api_key")
            return self._route(method, parts.path, params, body)

    def _route(self, method: str, path: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        if (method, path) == ("GET", "/health"):
            return 200, fixture("health")
        if (method, path) == ("GET", "/version"):
            return 200, {**fixture("version"), **({"pkgVersion": self.version} if self.version else {})}
        if (method, path) == ("POST", "/indexes"):
            return self._enqueue("indexCreation", body["uid"], {"primaryKey": body.get("primaryKey")}, body)
        if (method, path) == ("POST", "/multi-search"):
            results = []
            for query in body["queries"]:
                status, answer = self._search(query["indexUid"], query)
                if status != 200:
                    return status, answer
                results.append({"indexUid": query["indexUid"], **answer})
            return 200, {"results": results}
        if match := re.fullmatch(r"/tasks/(\d+)", path):
            return self._task(int(match[1]))
        if match := re.fullmatch(_INDEX, path):
            name = match["index"]
            if method == "GET":
                if name not in self.indexes:
                    return 404, _error("index_not_found", images=name)
                index = self.indexes[name]
                stamp = _stamp(index.created_at)
                return 200, {"uid": name, "primaryKey": index.primary_key, "createdAt": stamp, "updatedAt": stamp}
            if method == "DELETE":
                return self._enqueue("indexDeletion", name, {"deletedDocuments": 0}, None)
        if match := re.fullmatch(_INDEX + r"/(?P<rest>.+)", path):
            return self._index_route(method, match["index"], match["rest"], params, body)
        return 404, {"message": f"Not found: {method} {path}", "code": "not_found", "type": "invalid_request",
                     "link": "https://docs.meilisearch.com/errors#not_found"}  # fmt: skip

    def _index_route(self, method: str, name: str, rest: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        index = self.indexes.get(name)
        if (method, rest) == ("PATCH", "settings"):
            return self._enqueue("settingsUpdate", name, dict(body), body)
        if (method, rest) == ("POST", "documents"):
            details = {"receivedDocuments": len(body), "indexedDocuments": len(body)}
            return self._enqueue("documentAdditionOrUpdate", name, details, (params.get("primaryKey"), body))
        if (method, rest) == ("POST", "documents/delete-batch"):
            return self._enqueue("documentDeletion", name, {"providedIds": len(body)}, body)
        if index is None:
            return 404, _error("index_not_found", images=name)
        if (method, rest) == ("GET", "stats"):
            answer = fixture("stats")
            answer["numberOfDocuments"] = len(index.documents)
            return 200, answer
        if (method, rest) == ("GET", "documents"):
            docs = list(index.documents.values())
            offset, limit = int(params.get("offset", 0)), int(params.get("limit", 20))
            fields = params["fields"].split(",") if "fields" in params else None
            page = [_pick(d, fields) for d in docs[offset : offset + limit]]
            return 200, {"results": page, "offset": offset, "limit": limit, "total": len(docs)}
        if (method, rest) == ("POST", "documents/fetch"):
            try:
                ids = _ids_from_filter(body.get("filter"), index.primary_key or "ID")
            except ValueError as exc:
                return 400, {"message": str(exc), "code": "invalid_document_filter", "type": "invalid_request",
                             "link": "https://docs.meilisearch.com/errors#invalid_document_filter"}  # fmt: skip
            docs = [index.documents[i] for i in ids if i in index.documents]
            limit = body.get("limit", 20)
            page = [_pick(d, body.get("fields")) for d in docs[:limit]]
            return 200, {"results": page, "offset": 0, "limit": limit, "total": len(docs)}
        if (method, rest) == ("POST", "search"):
            return self._search(name, body)
        if (method, rest) == ("POST", "facet-search"):
            return self._facet_search(name, index, body)
        return 404, {"message": f"Not found: {method} {rest}", "code": "not_found", "type": "invalid_request",
                     "link": "https://docs.meilisearch.com/errors#not_found"}  # fmt: skip

    def _search(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        index = self.indexes.get(name)
        if index is None:
            return 404, _error("index_not_found", images=name)
        docs = list(index.documents.values())
        fields = body.get("attributesToRetrieve")
        common = {"query": body.get("q", ""), "processingTimeMs": 0}
        if "page" in body or "hitsPerPage" in body:
            page, size = body.get("page", 1), body.get("hitsPerPage", 20)
            hits = docs[(page - 1) * size : page * size] if size else []
            pages = -(-len(docs) // size) if size else 0
            answer = {"hits": [_pick(d, fields) for d in hits], **common, "hitsPerPage": size, "page": page,
                      "totalPages": pages, "totalHits": len(docs)}  # fmt: skip
            return 200, answer
        offset, limit = body.get("offset", 0), body.get("limit", 20)
        hits = docs[offset : offset + limit]
        return 200, {"hits": [_pick(d, fields) for d in hits], **common, "limit": limit, "offset": offset,
                     "estimatedTotalHits": len(docs)}  # fmt: skip

    def _facet_search(self, name: str, index: _Index, body: dict[str, Any]) -> tuple[int, Any]:
        facet = body.get("facetName")
        if facet not in index.settings.get("filterableAttributes", []):
            return 400, _error("invalid_facet_search_facet_name", Tags=str(facet))
        counts: Counter[str] = Counter()
        for doc in index.documents.values():
            value = doc.get(facet)
            counts.update(set(value) if isinstance(value, list) else {value} if isinstance(value, str) else set())
        query = body.get("facetQuery")
        wanted = _fold(query) if query is not None else ""
        found = sorted((_fold(v), v, n) for v, n in counts.items() if _fold(v).startswith(wanted))
        faceting = index.settings.get("faceting", {})
        most = faceting.get("maxValuesPerFacet", 100)
        orders = faceting.get("sortFacetValuesBy", {})
        if orders.get(facet, orders.get("*", "alpha")) == "count":
            # Meilisearch's heap, in its order: a value replaces the least (count, value) kept when used as often.
            heap: list[tuple[int, str]] = []
            for _, value, count in found:
                if len(heap) < most:
                    heapq.heappush(heap, (count, value))
                elif heap and heap[0][0] <= count:
                    heapq.heapreplace(heap, (count, value))
            hits = sorted(heap, reverse=True)
        else:
            hits = [(n, v) for _, v, n in found[:most]]
        answer = fixture("facet_search")
        answer.update(facetHits=[{"value": v, "count": n} for n, v in hits], facetQuery=query)
        return 200, answer

    def _enqueue(self, kind: str, name: str, details: dict[str, Any], change: Any) -> tuple[int, Any]:
        uid = len(self.tasks)
        error = None
        for number, (task_type, failure) in enumerate(self._failing_tasks):
            if task_type == kind:
                del self._failing_tasks[number]
                error = failure
                break
        if error is None:
            error = self._apply(kind, name, change)
        self.tasks[uid] = _Task(uid, name, kind, error, details)
        answer = fixture("task_enqueued")
        answer.update(taskUid=uid, indexUid=name, type=kind, enqueuedAt=_stamp(time.time()))
        return 202, answer

    def _apply(self, kind: str, name: str, change: Any) -> dict[str, Any] | None:
        """Carry out a task at once; the error object it failed with, or None."""
        if kind == "indexCreation":
            if name in self.indexes:
                return _error("index_already_exists", images=name)
            self.indexes[name] = _Index(change.get("primaryKey"), time.time())
        elif kind == "indexDeletion":
            if self.indexes.pop(name, None) is None:
                return _error("index_not_found", images=name)
        elif kind == "settingsUpdate":
            self.indexes.setdefault(name, _Index(None, time.time())).settings.update(change)
        elif kind == "documentAdditionOrUpdate":
            primary_key, docs = change
            index = self.indexes.setdefault(name, _Index(primary_key, time.time()))
            index.primary_key = index.primary_key or primary_key or "id"
            for doc in docs:
                index.documents[str(doc[index.primary_key])] = doc  # POST replaces a whole document
        elif kind == "documentDeletion":
            index = self.indexes.get(name)
            if index is None:
                return _error("index_not_found", images=name)
            for doc_id in change:
                index.documents.pop(str(doc_id), None)
        return None

    def _task(self, uid: int) -> tuple[int, Any]:
        task = self.tasks.get(uid)
        if task is None:
            return 404, {"message": f"Task `{uid}` not found.", "code": "task_not_found", "type": "invalid_request",
                         "link": "https://docs.meilisearch.com/errors#task_not_found"}  # fmt: skip
        task.polls += 1
        # The first poll sees the task still processing, so a client that does not poll again is caught.
        if task.polls == 1:
            answer = fixture("task_processing")
        else:
            answer = fixture("task_failed" if task.error else "task_succeeded")
            answer["error"] = task.error
            answer["details"] = task.details
        answer.update(uid=uid, indexUid=task.index, type=task.type)
        return 200, answer


def _fold(value: str) -> str:
    """A stand-in for Meilisearch's lossy facet normalization: lower case, compatibility forms, no accents."""
    decomposed = unicodedata.normalize("NFKD", value.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _pick(doc: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields or fields == ["*"]:
        return dict(doc)
    return {k: v for k, v in doc.items() if k in fields}


def _ids_from_filter(filter_: Any, key: str) -> list[str]:
    """The fake reads only the filter Paktum's fetch sends: [`<key> IN ["id", ...]`]."""
    if not (isinstance(filter_, list) and len(filter_) == 1 and filter_[0].startswith(f"{key} IN ")):
        raise ValueError(f"the fake Meilisearch cannot read the fetch filter {filter_!r}")
    return read_quoted_list(filter_[0].removeprefix(f"{key} IN "))
