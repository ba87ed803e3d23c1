"""A ceiling on request bodies: a larger one is a 413 as soon as it is announced or streamed past the limit."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paktum_common.errors import PaktumError

FORM_ENVELOPE = 64 * 1024  # what a multipart body may carry besides its file (boundaries, headers, small fields)


class RequestTooLargeError(PaktumError):
    """The request body is larger than PAKTUM_API_MAX_BODY_BYTES."""


def too_large(limit: int, setting: str = "PAKTUM_API_MAX_BODY_BYTES") -> str:
    return f"the request body is larger than {limit} bytes ({setting})"


class BodyLimit:
    """Pure ASGI middleware: a Content-Length over the limit is answered at once without reading a byte;
    a chunked body raises RequestTooLargeError (413 by the app's handler) the moment it passes the limit."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        graphql_paths: tuple[str, ...] = (),
        path_limits: Mapping[str, tuple[int, str]] | None = None,
        multipart_limits: Mapping[str, tuple[int, str]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.graphql_paths = graphql_paths  # answered as GraphQL errors there, `{"error": ...}` elsewhere
        # Routes that take files: their own ceiling and the setting that names it, instead of max_bytes.
        self.path_limits = dict(path_limits or {})
        # Routes that take files only in a multipart/form-data body (GraphQL uploads): that body's ceiling.
        self.multipart_limits = dict(multipart_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        graphql = scope["path"] in self.graphql_paths
        limit, setting = self.path_limits.get(scope["path"], (self.max_bytes, "PAKTUM_API_MAX_BODY_BYTES"))
        if scope["path"] in self.multipart_limits and headers.get(b"content-type", b"").lower().startswith(
            b"multipart/form-data"
        ):
            limit, setting = self.multipart_limits[scope["path"]]
        if declared is not None and not declared.isdigit():
            await _refuse(send, 400, "Content-Length is not a number", graphql)
            return
        if declared is not None and int(declared) > limit:
            await _refuse(send, 413, too_large(limit, setting), graphql)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLargeError(too_large(limit, setting))
            return message

        await self.app(scope, counted, send)


async def _refuse(send: Send, status: int, message: str, graphql: bool) -> None:
    answer = {"data": None, "errors": [{"message": message}]} if graphql else {"error": message}
    body = json.dumps(answer).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    # The unread body may still be on its way: close the connection rather than read it.
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
