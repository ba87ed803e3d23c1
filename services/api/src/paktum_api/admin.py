"""Admin: the token check, what the admin mutations do (scrape, delete, ban, not-variants), and their REST route."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from paktum_api.openapi import ErrorAnswer, NotVariantsAnswer, answers
from paktum_api.state import AppState
from paktum_common import keys
from paktum_common.contracts import ScrapeRequest, normalize_tags
from paktum_common.errors import NotAuthorizedError, PaktumError, SearchUnavailableError, UnknownImageError
from paktum_common.groups import Separation, mark_not_variants
from paktum_common.log import log_event
from paktum_common.settings import Settings

router = APIRouter()
log = logging.getLogger("paktum.api")

SCRAPE_REQUESTS_KEEP = 10_000  # the stream is a work queue, not an archive: trim the oldest


def admin_token_valid(settings: Settings, presented: str | None) -> bool:
    """True when admin features are on and `presented` is the token (compared in constant time)."""
    if settings.admin_token is None or not presented:
        return False
    expected = settings.admin_token.get_secret_value().encode("utf-8")
    return hmac.compare_digest(expected, presented.strip().encode("utf-8"))


def check_admin(state: AppState, authorization: str | None) -> None:
    """Raise unless `Authorization: Bearer <PAKTUM_ADMIN_TOKEN>`."""
    if state.settings.admin_token is None:
        raise NotAuthorizedError("admin features are off: PAKTUM_ADMIN_TOKEN is not set")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not admin_token_valid(state.settings, given):
        raise NotAuthorizedError("this needs the admin token: Authorization: Bearer <token>")


async def request_scrape(state: AppState, queries: list[str], source: str | None) -> str:
    """Publish a scrape request (tag queries, one per line) for the scraper; returns the stream entry ID."""
    lines = [" ".join(normalize_tags(query)) for query in queries]
    lines = [line for line in lines if line]
    if not lines:
        raise PaktumError("a scrape request needs at least one tag query")
    request = ScrapeRequest(queries="\n".join(lines), source=source or "")
    entry = await state.redis.xadd(
        keys.SCRAPE_REQUESTS,
        request.to_stream(),  # type: ignore[arg-type]
        maxlen=SCRAPE_REQUESTS_KEEP,
        approximate=True,
    )
    log_event(log, logging.INFO, "scrape requested", entry=entry, queries=len(lines), source=source or "")
    return str(entry)


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


def presented_token(request: Request) -> str | None:
    """The token from `Authorization: Bearer <token>`, or from `X-Admin-Token`."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-admin-token")


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
    if state.settings.admin_token is None:
        return JSONResponse({"error": "admin features are off: PAKTUM_ADMIN_TOKEN is not set"}, status_code=403)
    if not admin_token_valid(state.settings, presented_token(request)):
        return JSONResponse({"error": "a valid admin token is required"}, status_code=401)
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
