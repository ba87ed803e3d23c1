"""Related images: the other members of an image's variant group, nearest first, with their distances."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from paktum_api.graphql.schema import REDIS_DOWN
from paktum_api.openapi import RelatedAnswer, answers, query_parameter
from paktum_api.rest import whole_number
from paktum_api.state import AppState
from paktum_common.errors import InvalidQueryError, SearchUnavailableError
from paktum_common.groups import related_details

router = APIRouter()


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"results": [], "distances": [], "transforms": [], "error": message}, status_code=status)


@router.get(
    "/api/image/{image_id}/related",
    response_model=None,
    responses={200: {"model": RelatedAnswer}, **answers(RelatedAnswer, 400, 404, 503)},
    openapi_extra={
        "parameters": [
            # The maximum is PAKTUM_VARIANT_DISTANCE; the app writes the configured value in (openapi.configured).
            query_parameter(
                "distance", "Keep those within this many bits", {"type": "integer", "minimum": 0, "maximum": 64}
            )
        ]
    },
)
async def related_images(image_id: str, request: Request) -> JSONResponse:
    """The other members of the image's variant group; `?distance=N` keeps those within N bits of it.

    `distances` and `transforms` go with `results`, one each: the bits apart, and how the related image shows
    this one (`none`, `mirror`, `flip`, `rot90`, `rot180`, `rot270`, `transpose`, `transverse`)."""
    state: AppState = request.app.state.paktum
    limit = state.settings.variant_distance
    raw = request.query_params.get("distance")
    max_distance: int | None = None
    if raw is not None:
        try:
            max_distance = whole_number(raw, "distance", 0, limit)
        except InvalidQueryError as exc:
            return _error(str(exc), 400)
    try:
        doc = await state.search.get_document(image_id.lower())
    except SearchUnavailableError as exc:
        return _error(f"search unavailable: {exc}", 503)
    if doc is None:
        return _error(f"no image with ID {image_id!r}", 404)
    try:
        related = (await related_details(state.redis, [doc.ID], max_distance))[doc.ID]
    except RedisError:
        return _error(REDIS_DOWN, 503)
    return JSONResponse(
        {
            "results": [r.md5 for r in related],
            "distances": [r.distance for r in related],
            "transforms": [r.transform for r in related],
            "error": "",
        }
    )
