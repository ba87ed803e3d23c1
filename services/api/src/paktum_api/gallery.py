"""The web gallery at `/`: one static page that talks to the GraphQL API, so no build step is needed."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()

PAGE = (files("paktum_api") / "static" / "gallery.html").read_text(encoding="utf-8")


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
async def gallery() -> HTMLResponse:
    # The page changes with each release, not with the data: a short cache keeps an upgrade visible soon.
    return HTMLResponse(PAGE, headers={"Cache-Control": "public, max-age=300"})
