"""The FastAPI application: wiring only; the routes live in their own modules."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from paktum_api import admin, edits, files, gallery, ops, related, rest, signin, similar
from paktum_api.access import ReadAccess, ReadGuard
from paktum_api.graphql.schema import graphql_router
from paktum_api.imgproxy import Imgproxy
from paktum_api.kube import ScrapeJobs
from paktum_api.state import AppState
from paktum_common import __version__
from paktum_common.errors import InvalidQueryError, SearchUnavailableError
from paktum_common.log import log_event
from paktum_common.redis_client import connect
from paktum_common.search import open_search
from paktum_common.settings import Settings
from paktum_common.store import ImageStore

log = logging.getLogger("paktum.api")


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
        if settings.admin_token is None:
            log_event(log, logging.INFO, "admin features off: PAKTUM_ADMIN_TOKEN is not set")
        log_event(
            log,
            logging.INFO,
            "api ready",
            search=settings.effective_search_url,
            thumbnails="imgproxy" if state.imgproxy else "own",
        )
        try:
            yield
        finally:
            await state.search.close()
            await state.redis.aclose()

    app = FastAPI(
        title="Paktum",
        version=__version__,
        lifespan=lifespan,
        description="REST API of Paktum (the original's paths and shapes). GraphQL, the preferred API, is at /query.",
    )
    if access is not None:  # innermost: refused reads are still counted and logged by observe
        app.add_middleware(ReadGuard, settings=settings, access=access)
    app.middleware("http")(ops.observe)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.include_router(rest.router)
    app.include_router(related.router)
    app.include_router(similar.router)
    app.include_router(admin.router)
    app.include_router(edits.router)
    app.include_router(files.router)
    app.include_router(ops.router)
    app.include_router(graphql_router(settings.graphql_max_depth, settings.graphql_max_cost), include_in_schema=False)
    app.include_router(gallery.router)
    app.include_router(signin.router)

    @app.exception_handler(InvalidQueryError)
    async def invalid_query(_: Request, exc: InvalidQueryError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(SearchUnavailableError)
    async def unavailable(_: Request, exc: SearchUnavailableError) -> JSONResponse:
        return JSONResponse({"error": f"search unavailable: {exc}"}, status_code=503)

    return app
