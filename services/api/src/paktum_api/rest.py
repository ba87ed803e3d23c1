"""The REST API, with the original Paktum's paths and response shapes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from paktum_api.openapi import ImageAnswer, SearchAnswer, answers, query_parameter
from paktum_api.state import AppState
from paktum_common.contracts import ImageDocument
from paktum_common.errors import InvalidQueryError, SearchUnavailableError
from paktum_common.search import parse_query

router = APIRouter()

SEARCH_LIMIT_DEFAULT = 10
SEARCH_LIMIT_MAX = 50


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.paktum
    return state


def rest_image(state: AppState, request: Request, doc: ImageDocument) -> dict[str, Any]:
    url, thumbnail_url = state.links(doc, state.base_url(request))
    return doc.to_rest(url=url, thumbnail_url=thumbnail_url)


def whole_number(raw: str, name: str, low: int, high: int) -> int:
    """A query parameter as a number from `low` to `high`, in ASCII digits (`int()` also takes `٣` and `1_0`)."""
    text = raw.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 20 and low <= int(text) <= high):
        raise InvalidQueryError(f"{name} must be a whole number from {low} to {high}, got {raw[:40]!r}")
    return int(text)


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    return whole_number(raw, "limit", 1, maximum)


@router.get(
    "/api/search",
    response_model=None,
    responses={200: {"model": SearchAnswer}, **answers(SearchAnswer, 400, 503)},
    openapi_extra={
        "parameters": [
            query_parameter("query", "The search language, e.g. `cat,-dog,rating:s,width:>1000`", {"type": "string"}),
            query_parameter("q", "Another name for `query`", {"type": "string"}),
            query_parameter(
                "limit",
                f"How many images, 1 to {SEARCH_LIMIT_MAX}",
                {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT_MAX, "default": SEARCH_LIMIT_DEFAULT},
            ),
        ]
    },
)
async def search_images(request: Request) -> JSONResponse:
    """`query` (or `q`): the search language, terms separated by commas or spaces; results shuffled."""
    state = _state(request)
    # Parameters arrive as text and are checked here, so a bad one gets the original's error shape, not a 422.
    params = request.query_params
    text = params.get("query", params.get("q", ""))
    try:
        limit_value = parse_limit(params.get("limit"), SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX)
        parsed = parse_query(text)
    except InvalidQueryError as exc:
        return JSONResponse({"results": [], "error": str(exc), "total_hits": 0}, status_code=400)
    try:
        page = await state.search.search(parsed, limit_value)
    except SearchUnavailableError as exc:
        return JSONResponse({"results": [], "error": f"search unavailable: {exc}", "total_hits": 0}, 503)
    results = [rest_image(state, request, doc) for doc in page.hits]
    return JSONResponse({"results": results, "error": "", "total_hits": page.total})


@router.get(
    "/api/image/{image_id}",
    response_model=None,
    responses={200: {"model": ImageAnswer}, **answers(ImageAnswer, 404, 503)},
)
async def get_image(image_id: str, request: Request) -> JSONResponse:
    state = _state(request)
    try:
        doc = await state.search.get_document(image_id.lower())
    except SearchUnavailableError as exc:
        return JSONResponse({"image": None, "error": f"search unavailable: {exc}"}, 503)
    if doc is None:
        return JSONResponse({"image": None, "error": f"no image with ID {image_id!r}"}, status_code=404)
    return JSONResponse({"image": rest_image(state, request, doc), "error": ""})
