"""Admin: the token check, what the admin mutations do (scrape, delete, ban, not-variants), and their REST route."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, SecretStr, ValidationError
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from starlette.requests import HTTPConnection

from paktum_api.kube import KubeError, KubeForbiddenError, KubeUnavailableError, check_request_id
from paktum_api.openapi import ErrorAnswer, NotVariantsAnswer, ScrapeAnswer, answers
from paktum_api.state import AppState
from paktum_common import keys
from paktum_common.contracts import ScrapeOutcome, ScrapeRequest, normalize_tags
from paktum_common.errors import NotAuthorizedError, PaktumError, SearchUnavailableError, UnknownImageError
from paktum_common.groups import Separation, mark_not_variants
from paktum_common.log import log_event
from paktum_common.settings import Settings

router = APIRouter()
log = logging.getLogger("paktum.api")

SCRAPE_REQUESTS_KEEP = 10_000  # the stream is a work queue, not an archive: trim the oldest
# One request is one stream entry or one Job's environment (a Kubernetes object): a budget, not a whole booru's tags.
SCRAPE_QUERIES_MAX = 200
SCRAPE_REQUEST_CHARS = 16_384


def _is_token(token: SecretStr | None, presented: str | None) -> bool:
    """True when `token` is set and `presented` is it (compared in constant time)."""
    if token is None or not presented:
        return False
    return hmac.compare_digest(token.get_secret_value().encode("utf-8"), presented.strip().encode("utf-8"))


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None for any other scheme."""
    scheme, _, given = (authorization or "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


def admin_token_valid(settings: Settings, presented: str | None) -> bool:
    """True when admin features are on and `presented` is the token."""
    return _is_token(settings.admin_token, presented)


def upload_token_valid(settings: Settings, presented: str | None) -> bool:
    """True for the admin token or PAKTUM_UPLOAD_TOKEN: who may upload."""
    return admin_token_valid(settings, presented) or _is_token(settings.upload_token, presented)


def check_admin(state: AppState, authorization: str | None) -> None:
    """Raise unless `Authorization: Bearer <PAKTUM_ADMIN_TOKEN>`."""
    if state.settings.admin_token is None:
        raise NotAuthorizedError("admin features are off: PAKTUM_ADMIN_TOKEN is not set")
    if not admin_token_valid(state.settings, bearer(authorization)):
        raise NotAuthorizedError("this needs the admin token: Authorization: Bearer <token>")


async def request_scrape(state: AppState, queries: list[str], source: str | None, request_id: str | None = None) -> str:
    """Start a scrape of these tag queries; returns the request's ID, for scrapeStatus.

    On Kubernetes (PAKTUM_SCRAPE_JOB_CRONJOB) it is a Job made from the scraper CronJob, named after the request
    ID: the same `request_id` again starts nothing new. Otherwise it is an entry on the Redis stream that
    `paktum-scraper --serve-requests` consumes, and its ID is the entry's.
    """
    if len(queries) > SCRAPE_QUERIES_MAX or sum(len(q) for q in queries) + len(source or "") > SCRAPE_REQUEST_CHARS:
        raise PaktumError(
            f"a scrape request takes at most {SCRAPE_QUERIES_MAX} queries and {SCRAPE_REQUEST_CHARS} characters"
        )
    lines = [" ".join(normalize_tags(query)) for query in queries]
    lines = [line for line in lines if line]
    if not lines:
        raise PaktumError("a scrape request needs at least one tag query")
    if state.scrape_jobs is not None:
        request_id = check_request_id(request_id) if request_id else new_request_id()
        env = {"PAKTUM_SCRAPE_QUERIES": "\n".join(lines), "PAKTUM_SCRAPE_REQUEST_ID": request_id}
        if source:
            env["PAKTUM_SCRAPE_SOURCE"] = source
        job = await state.scrape_jobs.start(request_id, env)
        log_event(
            log, logging.INFO, "scrape requested", request=request_id, job=job.name, phase=job.phase,
            queries=len(lines), source=source or "",
        )  # fmt: skip
        return request_id
    if request_id:
        raise PaktumError("requestId is for startScrape as a Kubernetes Job; here the request's ID is made for it")
    request = ScrapeRequest(queries="\n".join(lines), source=source or "")
    entry = await state.redis.xadd(
        keys.SCRAPE_REQUESTS,
        request.to_stream(),  # type: ignore[arg-type]
        maxlen=SCRAPE_REQUESTS_KEEP,
        approximate=True,
    )
    log_event(log, logging.INFO, "scrape requested", entry=entry, queries=len(lines), source=source or "")
    return str(entry)


def new_request_id() -> str:
    """Milliseconds and a random tail: sorts by time, never repeats in practice, fits a Job name."""
    return f"{int(time.time() * 1000)}-{secrets.token_hex(3)}"


class UnknownScrapeError(PaktumError):
    """No scrape request with that ID (never made, or so old its traces are gone)."""


ScrapePhase = Literal["pending", "running", "done", "failed"]


@dataclass(frozen=True)
class ScrapeProgress:
    """How a scrape request is doing, whichever way it runs: its phase, its figures once known, and why it failed."""

    request: str
    status: ScrapePhase
    reason: str = ""
    found: int = 0
    published: int = 0
    query_errors: int = 0
    job: str = ""  # the Kubernetes Job carrying it out, if any

    def to_json(self) -> dict[str, object]:
        return {
            "request": self.request, "status": self.status, "reason": self.reason, "found": self.found,
            "published": self.published, "query_errors": self.query_errors, "job": self.job,
        }  # fmt: skip


async def scrape_status(state: AppState, request_id: str) -> ScrapeProgress:
    """The outcome recorded in paktum:scrape:results when there is one; otherwise the Job's status (Kubernetes) or
    the request's place on the stream (pending, or delivered to a consumer and running)."""
    request_id = request_id.strip()
    if state.scrape_jobs is not None:
        check_request_id(request_id)
    outcome = await latest_outcome(state.redis, request_id)
    if state.scrape_jobs is not None:
        job = await state.scrape_jobs.state(request_id)
        if job is not None and job.phase in ("pending", "running"):
            # An outcome already there is an earlier pod's (the Job retries): this one is not finished.
            return ScrapeProgress(request_id, job.phase, job=job.name)
        if outcome is not None:
            return _from_outcome(outcome, job.name if job else "")
        if job is not None:
            return ScrapeProgress(
                request_id, job.phase, job.reason or "finished without recording an outcome", job=job.name
            )
        raise UnknownScrapeError(f"no scrape request with ID {request_id!r}")
    if outcome is not None:
        return _from_outcome(outcome)
    if not STREAM_ID.fullmatch(request_id):
        raise UnknownScrapeError(f"no scrape request with ID {request_id!r}")
    try:
        delivered: Any = await state.redis.xpending_range(
            keys.SCRAPE_REQUESTS, keys.SCRAPE_REQUESTS_GROUP, min=request_id, max=request_id, count=1
        )
    except ResponseError:  # no consumer group yet: no scraper has ever read a request
        delivered = []
    if delivered:
        return ScrapeProgress(request_id, "running")
    if await state.redis.xrange(keys.SCRAPE_REQUESTS, min=request_id, max=request_id, count=1):
        return ScrapeProgress(request_id, "pending")
    raise UnknownScrapeError(f"no scrape request with ID {request_id!r}")


STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
OUTCOMES_SCANNED = 10_000  # the results stream is trimmed to about this many: older outcomes are gone anyway
OUTCOMES_PAGE = 500


async def latest_outcome(redis: Redis, request_id: str) -> ScrapeOutcome | None:
    """The newest outcome recorded for this request, reading the results stream from its end, a page at a time."""
    upper = "+"
    scanned = 0
    while scanned < OUTCOMES_SCANNED:
        page: Any = await redis.xrevrange(keys.SCRAPE_RESULTS, max=upper, min="-", count=OUTCOMES_PAGE)
        for _, fields in page:
            if fields.get("request") == request_id:
                return ScrapeOutcome.from_stream(fields)
        if len(page) < OUTCOMES_PAGE:
            return None
        scanned += len(page)
        upper = f"({page[-1][0]}"
    return None


def _from_outcome(outcome: ScrapeOutcome, job: str = "") -> ScrapeProgress:
    return ScrapeProgress(
        outcome.request, "done" if outcome.status == "done" else "failed", outcome.reason, outcome.found,
        outcome.published, outcome.query_errors, job,
    )  # fmt: skip


async def delete_image(state: AppState, image_id: str, ban: bool = True) -> bool:
    """Remove an image everywhere (the catalog's one removal path); False if there was none.

    With `ban` (the default) it never comes back: neither the file nor a re-upload of the picture.
    """
    image_id = image_id.strip().lower()
    if await state.search.get_document(image_id) is None:
        return False
    await state.catalog.remove([image_id], ban=ban, reason="deleted by an admin")
    return True


async def ban_tag(state: AppState, tag: str) -> str:
    """Add a tag to the run-time ban list (Redis, so it lasts); the cleanup purge and the scraper obey it."""
    names = normalize_tags([tag])
    if len(names) != 1 or names[0].startswith(("-", "~")) or "*" in names[0]:
        raise PaktumError(f"not a tag: {tag!r}")
    await state.redis.sadd(keys.BANNED_TAGS, names[0])
    log_event(log, logging.INFO, "tag banned", tag=names[0])
    return names[0]


async def unban_tag(state: AppState, tag: str) -> bool:
    """Lift a run-time ban (one from PAKTUM_BANNED_TAGS stays: configuration is changed where it is set)."""
    names = normalize_tags([tag])
    return bool(names) and bool(await state.redis.srem(keys.BANNED_TAGS, names[0]))


async def not_variants(state: AppState, a: str, b: str) -> Separation:
    """Mark two indexed images as not variants, for good; every later cleanup run respects it."""
    a, b = a.strip().lower(), b.strip().lower()
    if a == b:
        raise PaktumError("an image cannot be marked as not a variant of itself")
    found = await state.search.get_documents([a, b])
    missing = [image_id for image_id in (a, b) if image_id not in found]
    if missing:
        raise UnknownImageError(f"no image with ID {missing[0]!r}")
    result = await mark_not_variants(state.redis, a, b, state.settings.variant_distance)
    log_event(log, logging.INFO, "marked not variants", a=a, b=b, still_grouped=result.still_grouped)
    return result


def presented_token(request: HTTPConnection) -> str | None:
    """The token from `Authorization: Bearer <token>`, or from `X-Admin-Token`."""
    return bearer(request.headers.get("authorization")) or request.headers.get("x-admin-token")


IMAGE_ID = r"^\s*[0-9A-Fa-f]{32}\s*$"  # an MD5 in hex


class NotVariantsRequest(BaseModel):
    a: str = Field(pattern=IMAGE_ID)
    b: str = Field(pattern=IMAGE_ID)


@router.post(
    "/api/admin/not-variants",
    response_model=None,
    responses={200: {"model": NotVariantsAnswer}, **answers(ErrorAnswer, 400, 401, 403, 404, 409, 413, 503)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": NotVariantsRequest.model_json_schema()}},
        }
    },
)
async def not_variants_route(request: Request) -> JSONResponse:
    """Mark two images as not variants of each other: `{"a": ID, "b": ID}`."""
    state: AppState = request.app.state.paktum
    refusal = _admin_refusal(state, request)
    if refusal is not None:
        return refusal
    try:
        body = NotVariantsRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        return JSONResponse({"error": f'expected a JSON body {{"a": ID, "b": ID}}: {exc.errors()[0]["msg"]}'}, 400)
    if body.a.strip().lower() == body.b.strip().lower():  # well-formed, but it contradicts what a variant is
        return JSONResponse({"error": "an image cannot be marked as not a variant of itself"}, status_code=409)
    try:
        result = await not_variants(state, body.a, body.b)
    except SearchUnavailableError as exc:
        return JSONResponse({"error": f"search unavailable: {exc}"}, status_code=503)
    except UnknownImageError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    except PaktumError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    a, b = body.a.strip().lower(), body.b.strip().lower()
    return JSONResponse(
        {"a": a, "b": b, "newly_marked": result.newly_marked, "still_grouped": result.still_grouped, "error": ""}
    )


def _admin_refusal(state: AppState, request: Request) -> JSONResponse | None:
    if state.settings.admin_token is None:
        return JSONResponse({"error": "admin features are off: PAKTUM_ADMIN_TOKEN is not set"}, status_code=403)
    if not admin_token_valid(state.settings, presented_token(request)):
        return JSONResponse({"error": "a valid admin token is required"}, status_code=401)
    return None


@router.get(
    "/api/admin/scrapes/{request_id}",
    response_model=None,
    responses={200: {"model": ScrapeAnswer}, **answers(ErrorAnswer, 400, 401, 403, 404, 502, 504)},
)
async def scrape_status_route(request: Request, request_id: str) -> JSONResponse:
    """How a scrape request (startScrape's ID) is doing: pending, running, done or failed, with its figures."""
    state: AppState = request.app.state.paktum
    refusal = _admin_refusal(state, request)
    if refusal is not None:
        return refusal
    try:
        progress = await scrape_status(state, request_id)
    except UnknownScrapeError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    except KubeForbiddenError as exc:
        return JSONResponse({"error": str(exc)}, status_code=502)
    except KubeUnavailableError as exc:
        return JSONResponse({"error": str(exc)}, status_code=504)
    except KubeError as exc:
        return JSONResponse({"error": str(exc)}, status_code=502)
    except PaktumError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({**progress.to_json(), "error": ""})
