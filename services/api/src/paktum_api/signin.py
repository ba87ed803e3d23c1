"""The gallery's sign-in for private mode: a token form that sets a signed session cookie, and sign-out."""

from __future__ import annotations

import html
import logging
from importlib.resources import files
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from paktum_api.access import SESSION_COOKIE, SIGN_IN_PATH, SIGN_OUT_PATH, is_https, safe_next
from paktum_api.state import AppState
from paktum_common.log import log_event

router = APIRouter()
log = logging.getLogger("paktum.api")

PAGE = (files("paktum_api") / "static" / "signin.html").read_text(encoding="utf-8")
MAX_FORM_BYTES = 4096  # a token and where to go next; anything longer is not a sign-in


def _page(target: str, error: str = "", status: int = 200) -> HTMLResponse:
    body = PAGE.replace("{next}", html.escape(target)).replace("{error}", html.escape(error))
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@router.get(SIGN_IN_PATH, response_class=HTMLResponse, include_in_schema=False)
async def sign_in_page(request: Request) -> Response:
    state: AppState = request.app.state.paktum
    target = safe_next(request.query_params.get("next"))
    if state.access is None:  # reads are public: nothing to sign in to
        return RedirectResponse(target, status_code=303)
    return _page(target)


@router.post(SIGN_IN_PATH, include_in_schema=False)
async def sign_in(request: Request) -> Response:
    """Form fields `token` and `next`: a read (or admin) token sets the session cookie and goes to `next`."""
    state: AppState = request.app.state.paktum
    if state.access is None:
        return JSONResponse({"error": "private mode is off: reads need no sign-in"}, status_code=404)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return JSONResponse({"error": f"a sign-in form is at most {MAX_FORM_BYTES} bytes"}, status_code=413)
    form = dict(parse_qsl(body.decode("utf-8", "replace")))
    target = safe_next(form.get("next"))
    if not state.access.token_valid(state.settings, form.get("token")):
        log_event(log, logging.INFO, "sign-in refused", client=request.client.host if request.client else "")
        return _page(target, "That is not a read token of this server.", status=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        state.access.new_session(),
        max_age=state.access.session_seconds,
        httponly=True,
        samesite="lax",
        secure=is_https(state.settings, request),
        path="/",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.api_route(SIGN_OUT_PATH, methods=["GET", "POST"], include_in_schema=False)
async def sign_out(request: Request) -> Response:
    state: AppState = request.app.state.paktum
    response = RedirectResponse(SIGN_IN_PATH if state.access is not None else "/", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=is_https(state.settings, request), path="/"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
