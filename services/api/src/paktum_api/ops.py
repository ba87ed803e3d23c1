"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import contextlib
import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paktum_api.openapi import ReadyAnswer
from paktum_api.state import AppState
from paktum_common import jobstats, metrics
from paktum_common.errors import PaktumError
from paktum_common.log import log_event
from paktum_common.queue import IngestQueue
from paktum_common.redis_client import RedisHealth

router = APIRouter()
access_log = logging.getLogger("paktum.api.access")

REQUESTS = metrics.counter("api", "requests_total", "HTTP requests, by route and status.", ("route", "status"))
LATENCY = metrics.histogram("api", "request_seconds", "HTTP request latency, by route.", ("route",))
QUEUE_WAITING = metrics.gauge("api", "ingest_waiting_entries", "Posts waiting in the ingest stream.")
QUEUE_PENDING = metrics.gauge("api", "ingest_pending_entries", "Posts delivered to a hasher, not yet done.")
IMAGES = metrics.gauge("api", "indexed_images", "Images in the search index.")
# Short-lived jobs (cleanup, scraper) leave their last run in Redis; the api exports it (see jobstats).
JOB_RUNS = jobstats.JobStatsCollector()
_REDIS_HEALTH: dict[int, RedisHealth] = {}  # per Redis client: the api's view of Redis, for paktum_redis_up


def redis_health(state: AppState) -> RedisHealth:
    health = _REDIS_HEALTH.get(id(state.redis))
    if health is None or health.redis is not state.redis:
        health = _REDIS_HEALTH[id(state.redis)] = RedisHealth(state.redis, "api")
    return health


async def check_redis(state: AppState) -> str | None:
    """None while Redis answers; else what is wrong and for how long (an outage is logged once)."""
    health = redis_health(state)
    try:
        await state.redis.ping()
    except Exception as exc:
        health.went_away(exc)
        since = time.monotonic() - (health.down_since or time.monotonic())
        return f"unavailable for {since:.0f}s: {str(exc) or type(exc).__name__}"
    health.came_back()
    return None


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None, responses={200: {"model": ReadyAnswer}, 503: {"model": ReadyAnswer}})
async def readyz(request: Request) -> JSONResponse:
    state: AppState = request.app.state.paktum
    problems: dict[str, str] = {}
    redis_problem = await check_redis(state)
    if redis_problem:
        problems["redis"] = redis_problem
    try:
        await state.search.ping()
    except PaktumError as exc:
        problems["search"] = str(exc)
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus metrics", "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}
    },
)
async def prometheus_metrics(request: Request) -> Response:
    state: AppState = request.app.state.paktum
    # Figures that live elsewhere are read at scrape time, so they are never stale.
    await check_redis(state)
    try:
        waiting, pending = await IngestQueue(state.redis, state.settings).depth()
        QUEUE_WAITING.set(waiting)
        QUEUE_PENDING.set(pending)
        IMAGES.set(await state.search.count())
    except Exception:  # a scrape must still show the api's own figures
        pass
    with contextlib.suppress(Exception):  # Redis away: the last snapshot read is served
        await JOB_RUNS.refresh(state.redis)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def route_name(scope: Scope) -> str:
    """The route template (`/api/image/{image_id}`), so labels stay few whatever IDs are asked for."""
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


class Observe:
    """Metrics by route and one structured access-log line per HTTP request, once its answer is sent.

    Plain ASGI: starlette's BaseHTTPMiddleware (what `app.middleware("http")` makes) runs the app in a task of
    its own and passes the body and the answer through memory streams, a tenth of a millisecond per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # until the app starts an answer: what the server's error handler will send

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = route_name(scope)
            elapsed = time.perf_counter() - started
            LATENCY.labels(route).observe(elapsed)
            REQUESTS.labels(route, str(status)).inc()
            client = scope.get("client")
            log_event(
                access_log,
                logging.INFO,
                "request",
                method=scope["method"],
                path=scope["path"],
                route=route,
                status=status,
                ms=round(elapsed * 1000, 1),
                client=client[0] if client else "",
            )
