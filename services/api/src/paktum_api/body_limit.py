"""A ceiling on request bodies: a larger one is a 413 as soon as it is announced or streamed past the limit."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paktum_common.errors import PaktumError


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
        own_limits: dict[str, tuple[int, str]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.graphql_paths = graphql_paths  # answered as GraphQL errors there, `{"error": ...}` elsewhere
        # Paths taking larger bodies (uploads) under their own limit and setting: path -> (bytes, setting name).
        self.own_limits = own_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        graphql = scope["path"] in self.graphql_paths
        limit, setting = self.own_limits.get(scope["path"], (self.max_bytes, "PAKTUM_API_MAX_BODY_BYTES"))
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
