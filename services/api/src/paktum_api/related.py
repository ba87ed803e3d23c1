"""Related images: the other members of an image's variant group."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from paktum_api.state import AppState
from paktum_common.errors import SearchUnavailableError
from paktum_common.groups import related_many

router = APIRouter()


@router.get("/api/image/{image_id}/related")
async def related_images(image_id: str, request: Request) -> JSONResponse:
    """The other members of the image's variant group (filled by the cleanup job)."""
    state: AppState = request.app.state.paktum
    try:
        doc = await state.search.get_document(image_id.lower())
    except SearchUnavailableError as exc:
        return JSONResponse({"results": [], "error": f"search unavailable: {exc}"}, 503)
    if doc is None:
        return JSONResponse({"results": [], "error": f"no image with ID {image_id!r}"}, status_code=404)
    related = (await related_many(state.redis, [doc.ID]))[doc.ID]
    return JSONResponse({"results": [image_id for image_id, _ in related], "error": ""})
