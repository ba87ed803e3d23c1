"""Owners' edits of tags and rating: checking them, applying them through the catalog, logging who did what,
and their REST route (`PATCH /api/image/{id}`; GraphQL's updateImage and updateImages call the same code)."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from paktum_api.admin import admin_token_valid, presented_token
from paktum_api.openapi import ImageAnswer, answers
from paktum_api.rest import rest_image
from paktum_api.state import AppState
from paktum_common import keys
from paktum_common.contracts import ImageDocument, Rating, TagEdit, edited_tag
from paktum_common.errors import (
    BadPostError,
    InvalidEditError,
    PaktumError,
    SearchUnavailableError,
    TransientError,
    UnknownImageError,
)
from paktum_common.log import log_event
from paktum_common.search import parse_query

router = APIRouter()
log = logging.getLogger("paktum.api")

MAX_EDIT_TAGS = 100  # tags added and removed by one request, together
EDIT_LOG_KEEP = 10_000  # the Redis log of edits keeps about this many of the latest
RATINGS = ", ".join(r.value for r in Rating)


def token_fingerprint(token: str | None) -> str:
    """Who made a change, without writing the token down: the start of its SHA-256 (not reversible)."""
    if not token:
        return "none"
    return "sha256:" + hashlib.sha256(token.strip().encode("utf-8")).hexdigest()[:12]


def tag_edit(add: list[str] | None, remove: list[str] | None, rating: str | None) -> TagEdit:
    """The edit asked for, checked: tags as scraped tags are normalised, at most MAX_EDIT_TAGS, a known rating."""
    add, remove = list(add or []), list(remove or [])
    if len(add) + len(remove) > MAX_EDIT_TAGS:
        given = len(add) + len(remove)
        raise InvalidEditError(f"at most {MAX_EDIT_TAGS} tags can be added and removed at once, got {given}")
    added = list(dict.fromkeys(edited_tag(tag) for tag in add))
    removed = list(dict.fromkeys(edited_tag(tag) for tag in remove))
    both = [tag for tag in added if tag in removed]
    if both:
        raise InvalidEditError(f"a tag cannot be added and removed at once: {both[0]!r}")
    parsed = None
    if rating is not None:
        try:
            parsed = Rating.parse(rating)
        except BadPostError:
            raise InvalidEditError(f"unknown rating {rating!r} (use {RATINGS})") from None
    if not added and not removed and parsed is None:
        raise InvalidEditError("nothing to change: give tags to add or remove, or a rating")
    return TagEdit(add=tuple(added), remove=tuple(removed), rating=parsed)


async def _record(state: AppState, by: str, edit: TagEdit, changed: int, **what: Any) -> None:
    """One structured log line and one entry of the capped Redis log per request."""
    fields = {
        "by": by,
        "add": " ".join(edit.add),
        "remove": " ".join(edit.remove),
        "rating": edit.rating.value if edit.rating else "",
        "changed": changed,
        **what,
    }
    log_event(log, logging.INFO, "tags edited", **fields)
    entry = {key: str(value) for key, value in fields.items()}
    await state.redis.xadd(keys.TAG_EDIT_LOG, entry, maxlen=EDIT_LOG_KEEP, approximate=True)  # type: ignore[arg-type]


async def update_image(state: AppState, image_id: str, edit: TagEdit, token: str | None) -> ImageDocument:
    """Edit one image; UnknownImageError if there is none. Returns the document as it is now."""
    image_id = image_id.strip().lower()
    changed = await state.catalog.update_tags([image_id], edit)
    if changed:
        doc: ImageDocument | None = changed[0]
    else:
        doc = await state.search.get_document(image_id)
        if doc is None:
            raise UnknownImageError(f"no image with ID {image_id!r}")
    await _record(state, token_fingerprint(token), edit, len(changed), image=image_id)
    assert doc is not None
    return doc


async def update_images(state: AppState, query: str, edit: TagEdit, token: str | None) -> int:
    """Edit every image a search finds (the search language); returns how many changed."""
    matched, changed = await state.catalog.update_matching(parse_query(query), edit)
    await _record(state, token_fingerprint(token), edit, changed, query=query, matched=matched)
    return changed


class ImagePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    addTags: list[str] = []
    removeTags: list[str] = []
    rating: str | None = None


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"image": None, "error": message}, status_code=status)


@router.patch(
    "/api/image/{image_id}",
    response_model=None,
    responses={200: {"model": ImageAnswer}, **answers(ImageAnswer, 400, 401, 403, 404, 413, 503)},
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": ImagePatch.model_json_schema()}}}
    },
)
async def patch_image(image_id: str, request: Request) -> JSONResponse:
    """Edit an image's tags and rating (admin): `{"addTags": [...], "removeTags": [...], "rating": "safe"}`."""
    state: AppState = request.app.state.paktum
    if state.settings.admin_token is None:
        return _error("admin features are off: PAKTUM_ADMIN_TOKEN is not set", 403)
    token = presented_token(request)
    if not admin_token_valid(state.settings, token):
        return _error("a valid admin token is required", 401)
    try:
        body = ImagePatch.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return _error(f'expected a JSON body {{"addTags": [..], "removeTags": [..], "rating": ".."}}: '
                      f"{where + ': ' if where else ''}{first['msg']}", 400)  # fmt: skip
    try:
        doc = await update_image(state, image_id, tag_edit(body.addTags, body.removeTags, body.rating), token)
    except SearchUnavailableError as exc:
        return _error(f"search unavailable: {exc}", 503)
    except TransientError as exc:  # another edit held the lock too long: worth a retry
        return _error(str(exc), 503)
    except UnknownImageError as exc:
        return _error(str(exc), 404)
    except PaktumError as exc:
        return _error(str(exc), 400)
    return JSONResponse({"image": rest_image(state, request, doc), "error": ""})
