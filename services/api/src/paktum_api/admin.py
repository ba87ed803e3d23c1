"""Admin routes (off unless PAKTUM_ADMIN_TOKEN is set): decisions that every later cleanup run respects."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from paktum_api.state import AppState
from paktum_common.errors import SearchUnavailableError
from paktum_common.groups import mark_not_variants
from paktum_common.log import log_event
from paktum_common.settings import Settings

router = APIRouter()
log = logging.getLogger("paktum.api")


def admin_token_valid(settings: Settings, presented: str | None) -> bool:
    """True when admin features are on and `presented` is the token (compared in constant time)."""
    if settings.admin_token is None or not presented:
        return False
    expected = settings.admin_token.get_secret_value().encode()
    return hmac.compare_digest(expected, presented.encode())


def presented_token(request: Request) -> str | None:
    """The token from `Authorization: Bearer <token>`, or from `X-Admin-Token`."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-admin-token")


def _refusal(request: Request, settings: Settings) -> JSONResponse | None:
    if settings.admin_token is None:
        return JSONResponse({"error": "admin features are off: PAKTUM_ADMIN_TOKEN is not set"}, status_code=403)
    if not admin_token_valid(settings, presented_token(request)):
        return JSONResponse({"error": "a valid admin token is required"}, status_code=401)
    return None


class NotVariantsRequest(BaseModel):
    a: str
    b: str


@router.post("/api/admin/not-variants")
async def not_variants(request: Request) -> JSONResponse:
    """Mark two images as not variants of each other: `{"a": ID, "b": ID}`."""
    state: AppState = request.app.state.paktum
    refusal = _refusal(request, state.settings)
    if refusal is not None:
        return refusal
    try:
        body = NotVariantsRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        return JSONResponse({"error": f'expected a JSON body {{"a": ID, "b": ID}}: {exc.errors()[0]["msg"]}'}, 400)
    a, b = body.a.strip().lower(), body.b.strip().lower()
    if a == b:
        return JSONResponse({"error": "an image cannot be marked as not a variant of itself"}, status_code=400)
    try:
        found = await state.search.get_documents([a, b])
    except SearchUnavailableError as exc:
        return JSONResponse({"error": f"search unavailable: {exc}"}, status_code=503)
    missing = [i for i in (a, b) if i not in found]
    if missing:
        return JSONResponse({"error": f"no image with ID {missing[0]!r}"}, status_code=404)
    result = await mark_not_variants(state.redis, a, b, state.settings.variant_distance)
    log_event(log, logging.INFO, "marked not variants", a=a, b=b, still_grouped=result.still_grouped)
    return JSONResponse(
        {"a": a, "b": b, "newly_marked": result.newly_marked, "still_grouped": result.still_grouped, "error": ""}
    )
