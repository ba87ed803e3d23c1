"""The FastAPI application: wiring only; the routes live in their own modules."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from paktum_api import admin, edits, files, gallery, ops, related, rest, signin, similar, upload
from paktum_api.access import ReadAccess, ReadGuard
from paktum_api.body_limit import FORM_ENVELOPE, BodyLimit, RequestTooLargeError
from paktum_api.graphql.schema import REDIS_DOWN, graphql_router
from paktum_api.imgproxy import Imgproxy
from paktum_api.kube import ScrapeJobs
from paktum_api.limits import DocumentLimits
from paktum_api.openapi import REASONS, ErrorAnswer, configured
from paktum_api.state import AppState
from paktum_common import __version__
from paktum_common.errors import InvalidQueryError, SearchUnavailableError
from paktum_common.log import log_event
from paktum_common.redis_client import connect
from paktum_common.search import SearchBackend, open_search
from paktum_common.settings import Settings
from paktum_common.store import ImageStore

log = logging.getLogger("paktum.api")


async def _warm(search: SearchBackend) -> None:
    started = time.perf_counter()
    try:
        await search.warm()
    except Exception as exc:  # the searches that follow report it, one by one
        log_event(log, logging.WARNING, "search index not loaded", reason=str(exc))
        return
    log_event(log, logging.INFO, "search index loaded", seconds=round(time.perf_counter() - started, 2))
    # What is alive now (the index, the schema, the modules) lives as long as the process: out of the cycle
    # collector's sight, so its full collections, which requests' garbage triggers, do not walk it every time.
    gc.collect()
    gc.freeze()


def create_app(settings: Settings) -> FastAPI:
    access = ReadAccess.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert settings.redis_url, "PAKTUM_REDIS_URL must be set"
        state = AppState(
            settings=settings,
            redis=connect(settings.redis_url),
            search=open_search(settings),
            store=ImageStore.from_settings(settings),
            imgproxy=Imgproxy.from_settings(settings),
            scrape_jobs=ScrapeJobs.from_settings(settings),
            access=access,
        )
        app.state.paktum = state
        try:
            upload.prepare_staging(settings)
        except OSError as exc:  # a read-only data dir: the api serves, uploads answer 503
            log_event(log, logging.WARNING, "uploads cannot be staged", path=str(settings.upload_staging_dir),
                      reason=str(exc))  # fmt: skip
        if settings.admin_token is None:
            log_event(log, logging.INFO, "admin features off: PAKTUM_ADMIN_TOKEN is not set")
        log_event(
            log,
            logging.INFO,
            "api ready",
            search=settings.effective_search_url,
            thumbnails="imgproxy" if state.imgproxy else "own",
        )
        # The embedded search loads its index at the first search (seconds at a million images): start now.
        warming = asyncio.create_task(_warm(state.search))
        sweeping = asyncio.create_task(upload.keep_staging_clean(state))
        try:
            yield
        finally:
            warming.cancel()
            sweeping.cancel()
            await state.search.close()
            await state.redis.aclose()

    app = FastAPI(
        title="Paktum",
        version=__version__,
        lifespan=lifespan,
        description="REST API of Paktum (the original's paths and shapes). GraphQL, the preferred API, is at /query.",
        # Any route, whatever it reads: the body limit answers before the route runs.
        responses={413: {"model": ErrorAnswer, "description": REASONS[413]}},
    )
    if access is not None:  # innermost: refused reads are still counted and logged by Observe
        app.add_middleware(ReadGuard, settings=settings, access=access)
    # Inside Observe, so a refused body is counted and logged like any other answer.
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.api_max_body_bytes,
        graphql_paths=("/query",),
        path_limits={
            # A picture to search by: its own ceiling, with room for a multipart envelope (the route checks the file).
            "/api/similar": (settings.similar_max_bytes + FORM_ENVELOPE, "PAKTUM_SIMILAR_MAX_BYTES"),
            upload.UPLOAD_PATH: (settings.upload_max_request_bytes, "PAKTUM_UPLOAD_MAX_REQUEST_BYTES"),
        },
        # GraphQL uploads (uploadImages): the upload's ceiling, for multipart bodies only.
        multipart_limits={"/query": (settings.upload_max_request_bytes, "PAKTUM_UPLOAD_MAX_REQUEST_BYTES")},
    )
    app.add_middleware(ops.Observe)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "GraphQL-Preflight", "Apollo-Require-Preflight"],
        )
    app.include_router(rest.router)
    app.include_router(related.router)
    app.include_router(similar.router)
    app.include_router(admin.router)
    app.include_router(edits.router)
    app.include_router(upload.router)
    app.include_router(files.router)
    app.include_router(ops.router)
    limits = DocumentLimits(
        max_tokens=settings.graphql_max_tokens, max_depth=settings.graphql_max_depth, max_cost=settings.graphql_max_cost
    )
    graphql, graphql_post = graphql_router(limits)
    app.include_router(graphql, include_in_schema=False)
    app.router.routes.insert(0, graphql_post)  # first: a POST to /query is matched before any other route
    app.include_router(gallery.router)
    app.include_router(signin.router)
    generated = app.openapi
    app.openapi = lambda: configured(generated(), settings.variant_distance, settings.upload_max_files)  # type: ignore[method-assign]

    @app.exception_handler(InvalidQueryError)
    async def invalid_query(_: Request, exc: InvalidQueryError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(SearchUnavailableError)
    async def unavailable(_: Request, exc: SearchUnavailableError) -> JSONResponse:
        return JSONResponse({"error": f"search unavailable: {exc}"}, status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:  # one path can have a route per method: Allow names all the documented ones
            allowed = allowed_methods(app, request.url.path)
            if allowed:
                exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
        return await http_exception_handler(request, exc)

    @app.exception_handler(RedisError)
    async def redis_down(_: Request, exc: RedisError) -> JSONResponse:
        log_event(log, logging.WARNING, "request failed: redis unavailable", error=type(exc).__name__)
        return JSONResponse({"error": REDIS_DOWN}, status_code=503)

    @app.exception_handler(RequestTooLargeError)
    async def too_large(_: Request, exc: RequestTooLargeError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=413, headers={"Connection": "close"})

    return app


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI schema documents for `path` (whichever route templates match it)."""
    methods: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)
