"""The /query HTTP layer: a body that is not a GraphQL request gets a GraphQL error saying why, never a 500."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from fastapi import BackgroundTasks, Request, Response, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.routing import Match, Route
from starlette.types import Scope
from strawberry.fastapi import BaseContext, GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.http.typevars import Context, RootValue
from strawberry.types.unset import UNSET

from paktum_api.body_limit import RequestTooLargeError

MAX_JSON_DEPTH = 32  # a GraphQL request is an object of strings and small variable objects
INLINE_JSON_BYTES = 8_192  # bodies up to this size are checked on the event loop: tens of microseconds
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_INNERMOST = re.compile(r"\[\]|\{\}")
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def checked_json(data: str | bytes) -> Any:
    """JSON that is UTF-8, at most MAX_JSON_DEPTH deep and holds no lone surrogate; HTTP 400 with the reason else.

    Every step runs at C speed (codecs, re, json), never a Python loop over the items of a large body.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HTTPException(400, f"the body is not UTF-8 (byte {exc.start} is {data[exc.start]:#04x})") from None
    try:
        value = json.loads(data)
    except RecursionError:
        raise HTTPException(400, f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
        raise HTTPException(400, f"the body is not JSON: {exc}") from None
    if _too_deep(data):  # valid JSON, so its brackets outside strings pair up
        raise HTTPException(400, f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep")
    # Strict UTF-8 cannot hold a surrogate: only a \\uD800-\\uDFFF escape makes one, so most bodies skip this.
    if _SURROGATE_ESCAPE.search(data):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            shown = exc.object[exc.start]
            raise HTTPException(400, f"a string holds a lone surrogate ({shown!r}): not valid Unicode") from None
    return value


def _too_deep(text: str) -> bool:
    """Whether brackets outside strings nest deeper than MAX_JSON_DEPTH: each pass drops the innermost pairs."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return False
        brackets = _INNERMOST.sub("", brackets)
    return bool(brackets)


def graphql_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"data": None, "errors": [{"message": message}]}, status_code=status)


def encoded_json(data: object) -> bytes:
    """An answer as JSON: orjson, or json.dumps for what orjson refuses (a lone surrogate echoed from a query
    string, an integer beyond 64 bits), which escapes it as JSON allows."""
    try:
        return orjson.dumps(data)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(data, separators=(",", ":")).encode()


class PaktumGraphQLRouter(GraphQLRouter[Any, None]):
    def decode_json(self, data: str | bytes) -> object:
        return checked_json(data)

    def encode_json(self, data: object) -> bytes:
        return encoded_json(data)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData | list[GraphQLRequestData]:
        content_type, _ = parse_content_type(request.content_type or "")
        if request.method != "POST" or "application/json" not in content_type:
            return await super().parse_http_body(request)
        # A large body is decoded and checked off the event loop (at the size limit, a few milliseconds of work);
        # a small one, as the web clients send, costs less than the hop to a thread.
        raw = await request.get_body()
        body = checked_json(raw) if len(raw) <= INLINE_JSON_BYTES else await asyncio.to_thread(checked_json, raw)
        if not isinstance(body, dict):  # strawberry would call .get on it: an AttributeError, a 500
            shown = type(body).__name__ if body is not None else "null"
            raise HTTPException(
                400, f'the body must be a JSON object like {{"query": "...", "variables": {{}}}}, not {shown}'
            )
        query, variables, extensions = body.get("query"), body.get("variables"), body.get("extensions")
        if not isinstance(query, str | None):
            raise HTTPException(400, "`query` must be a string")
        for name, value in (("variables", variables), ("extensions", extensions)):
            if not isinstance(value, dict | None):
                raise HTTPException(400, f"`{name}` must be a JSON object")
        operation_name = body.get("operationName")
        if not isinstance(operation_name, str | None):
            raise HTTPException(400, "`operationName` must be a string")
        transport = self._get_stream_transport_from_headers(request.headers)
        return GraphQLRequestData(
            query=query,
            variables=variables,
            operation_name=operation_name,
            extensions=extensions,
            protocol=transport.protocol if transport else "http",
        )

    async def run(  # type: ignore[override]
        self,
        request: Request | WebSocket,
        context: Context = UNSET,
        root_value: RootValue | None = UNSET,
    ) -> Response | WebSocket:
        try:
            return await super().run(request, context, root_value)  # type: ignore[arg-type]
        except HTTPException as exc:
            # Strawberry answers these as plain text; a GraphQL client expects `errors`.
            return graphql_error(exc.status_code, exc.reason)
        except RequestTooLargeError as exc:
            return graphql_error(413, str(exc))


class GraphQLPost(Route):
    """POST /query handed straight to the GraphQL router's view, ahead of every other route.

    Through FastAPI, a POST was matched against each route included before the GraphQL router and then had the
    route's dependencies solved (request, response, the context and the root value, through strawberry's
    wrappers): about a fifth of a small query's time. This does what that route does, in the same order: a
    sub-response for the view to set a status or headers on, the context from `context_getter` with the
    request, the sub-response and background tasks, the root value None, an HTTPException as plain text.
    Every other method on /query (GraphiQL, queries over GET, websockets) still takes the router's own routes.
    """

    def __init__(self, path: str, router: GraphQLRouter[Any, None], context_getter: Any) -> None:
        self.router = router
        self.context_getter = context_getter
        super().__init__(path, self.post, methods=["POST"], include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "POST":
            return Match.NONE, {}  # never a partial match: other methods go on to the router's routes
        match, child_scope = super().matches(scope)
        if match is Match.FULL:
            child_scope["route"] = self  # as FastAPI's routes do: metrics and the access log name the route
        return match, child_scope

    async def post(self, request: Request) -> Response:
        sub_response = Response()  # as FastAPI makes a route's `response`: no length, no status of its own
        del sub_response.headers["content-length"]
        sub_response.status_code = None  # type: ignore[assignment]
        tasks = BackgroundTasks()
        context = await self.context_getter(request)
        if isinstance(context, BaseContext):
            context.request, context.response, context.background_tasks = request, sub_response, tasks
        self.router.temporal_response = sub_response  # type: ignore[attr-defined]  # where strawberry keeps it
        try:
            response = await self.router.run(request=request, context=context, root_value=None)
        except HTTPException as exc:
            response = PlainTextResponse(exc.reason, status_code=exc.status_code)
        if tasks.tasks and response.background is None:
            response.background = tasks
        return response
