"""Related images: the other members of an image's variant group, nearest first, with their distances."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from paktum_api.state import AppState
from paktum_common.errors import SearchUnavailableError
from paktum_common.groups import related_details

router = APIRouter()


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"results": [], "distances": [], "transforms": [], "error": message}, status_code=status)


@router.get("/api/image/{image_id}/related")
async def related_images(image_id: str, request: Request) -> JSONResponse:
    """The other members of the image's variant group; `?distance=N` keeps those within N bits of it.

    `distances` and `transforms` go with `results`, one each: the bits apart, and how the related image shows
    this one (`none`, `mirror`, `flip`, `rot90`, `rot180`, `rot270`, `transpose`, `transverse`)."""
    state: AppState = request.app.state.paktum
    limit = state.settings.variant_distance
    raw = request.query_params.get("distance")
    max_distance: int | None = None
    if raw is not None:
        if not raw.strip().isdigit():
            return _error(f"distance must be a whole number from 0 to {limit}, got {raw!r}", 400)
        max_distance = int(raw)
        if max_distance > limit:
            return _error(f"distance must be a whole number from 0 to {limit}, got {raw!r}", 400)
    try:
        doc = await state.search.get_document(image_id.lower())
    except SearchUnavailableError as exc:
        return _error(f"search unavailable: {exc}", 503)
    if doc is None:
        return _error(f"no image with ID {image_id!r}", 404)
    related = (await related_details(state.redis, [doc.ID], max_distance))[doc.ID]
    return JSONResponse(
        {
            "results": [r.md5 for r in related],
            "distances": [r.distance for r in related],
            "transforms": [r.transform for r in related],
            "error": "",
        }
    )
