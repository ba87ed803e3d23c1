"""Serving stored originals and thumbnails."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from paktum_api.state import AppState
from paktum_common.store import ImageStore

router = APIRouter()

IMMUTABLE = "public, max-age=31536000, immutable"  # names are content hashes: a name never changes content


def _file(path_ok: bool, path: str) -> Response:
    if not path_ok:
        return JSONResponse({"error": "not found"}, status_code=404)
    return FileResponse(path, headers={"Cache-Control": IMMUTABLE})


@router.get("/images/{filename}")
async def image_file(filename: str, request: Request) -> Response:
    state: AppState = request.app.state.paktum
    path = state.store.image_path(filename)
    return _file(ImageStore.is_valid_name(filename) and path.is_file(), str(path))


@router.get("/thumbnails/{filename}")
async def thumbnail_file(filename: str, request: Request) -> Response:
    state: AppState = request.app.state.paktum
    md5 = filename.partition(".")[0]
    path = state.store.thumbnail_path(md5)
    ok = ImageStore.is_valid_name(filename) and filename == ImageStore.thumbnail_name(md5) and path.is_file()
    return _file(ok, str(path))
