"""Serving stored originals and thumbnails: only names the store makes, with ETags, ranges and right types."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from paktum_api.state import AppState
from paktum_common.contracts import MEDIA_TYPES
from paktum_common.store import SMALL, ImageStore

router = APIRouter()

IMMUTABLE = "public, max-age=31536000, immutable"  # names are content hashes: a name never changes content


def _file(request: Request, path_ok: bool, path: str, etag: str, extension: str) -> Response:
    if not path_ok:
        return JSONResponse({"error": "not found"}, status_code=404)
    headers = {"Cache-Control": IMMUTABLE, "ETag": etag}
    if etag in (tag.strip() for tag in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    media = MEDIA_TYPES.get(extension)
    media_type = media.content_type if media else "application/octet-stream"
    return FileResponse(path, headers=headers, media_type=media_type)


@router.get("/images/{filename}", summary="A stored original (supports Range and If-None-Match)")
@router.head("/images/{filename}", include_in_schema=False)
async def image_file(filename: str, request: Request) -> Response:
    state: AppState = request.app.state.paktum
    path = state.store.image_path(filename)
    md5, _, extension = filename.partition(".")
    ok = ImageStore.is_valid_name(filename) and path.is_file()
    return _file(request, ok, str(path), f'"{md5}"', extension)


@router.get("/thumbnails/{filename}", summary="The thumbnail the hasher made (JPEG)")
@router.head("/thumbnails/{filename}", include_in_schema=False)
async def thumbnail_file(filename: str, request: Request) -> Response:
    state: AppState = request.app.state.paktum
    md5 = filename.partition(".")[0]
    path = state.store.thumbnail_path(md5)
    ok = ImageStore.is_valid_name(filename) and filename == ImageStore.thumbnail_name(md5) and path.is_file()
    return _file(request, ok, str(path), f'"{md5}-thumbnail"', "jpg")


@router.get(f"/thumbnails/{SMALL}/{{filename}}", summary="The smaller thumbnail (JPEG), for srcset")
@router.head(f"/thumbnails/{SMALL}/{{filename}}", include_in_schema=False)
async def small_thumbnail_file(filename: str, request: Request) -> Response:
    """An image stored before the smaller thumbnail existed (or with PAKTUM_THUMBNAIL_SMALL_SIZE=0) has none:
    its default thumbnail is served instead, until a new import or scrape of the file writes both."""
    state: AppState = request.app.state.paktum
    md5 = filename.partition(".")[0]
    ok = ImageStore.is_valid_name(filename) and filename == ImageStore.thumbnail_name(md5)
    small = state.store.small_thumbnail_path(md5)
    if ok and small.is_file():
        return _file(request, True, str(small), f'"{md5}-thumbnail-{SMALL}"', "jpg")
    path = state.store.thumbnail_path(md5)
    return _file(request, ok and path.is_file(), str(path), f'"{md5}-thumbnail"', "jpg")
