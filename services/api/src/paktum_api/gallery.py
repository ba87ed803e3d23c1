"""The web gallery at `/`: one static page that talks to the GraphQL API, so no build step is needed."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from paktum_api.access import SIGN_OUT_PATH

router = APIRouter()

PAGE = (files("paktum_api") / "static" / "gallery.html").read_text(encoding="utf-8")
# In private mode the footer gets a way out of the reader's session (the admin token has its own sign-out).
PRIVATE_PAGE = PAGE.replace("<!--private-mode-->", f'<a id="sign-out-reader" href="{SIGN_OUT_PATH}">Sign out</a>')


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
async def gallery(request: Request) -> HTMLResponse:
    # The page changes with each release, not with the data: a short cache keeps an upgrade visible soon.
    page = PAGE if request.app.state.paktum.access is None else PRIVATE_PAGE
    return HTMLResponse(page, headers={"Cache-Control": "public, max-age=300"})
