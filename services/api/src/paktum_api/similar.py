"""Search by image: the indexed images nearest to a picture uploaded or named by URL, without indexing it.

The picture is hashed as the hasher hashes one (paktum_common.dct_hash: the plain pHash, its mirrored and
rotated alternates and its symmetric hash from one DCT; a transparent picture on white, with its flattening on
black as more alternates and a second symmetric hash), but with numpy alone: the api carries no scipy. The
nearest images are looked up in the pHash registry's chunk tables (and, by its signature's SimHash, the candidates
for signature neighbours), as the hasher's linking does, and measured with paktum_common.phash.match (a pair with
a symmetric side by the symmetric hashes alone).
"""

from __future__ import annotations

import asyncio
import io
import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from PIL import Image, ImageOps, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from paktum_api.body_limit import FORM_ENVELOPE
from paktum_api.openapi import SIMILAR_BODY, SimilarAnswer, answers, query_parameter
from paktum_api.rest import parse_limit, rest_image, whole_number
from paktum_api.state import AppState
from paktum_common.contracts import ImageDocument
from paktum_common.dct_hash import (
    ANGULAR_SIDE,
    PICTURE_SIDE,
    PictureHashes,
    angular_reading,
    dct_32,
    draft_box,
    picture_hashes,
    transparent_hashes,
    with_hues,
)
from paktum_common.download import download
from paktum_common.errors import (
    BadImageError,
    BadPostError,
    InvalidQueryError,
    PaktumError,
    SearchUnavailableError,
)
from paktum_common.hues import HUE_SIDE, hue_mark
from paktum_common.phash import NO_MATCH, Symmetry, match, simhash_of
from paktum_common.registry import IMAGES

router = APIRouter()

SIMILAR_LIMIT_DEFAULT = 20
SIMILAR_LIMIT_MAX = 100
# The chunk tables are read within this many bits at most: beyond it a lookup reads most of the registry.
SIMILAR_MAX_DISTANCE = 12
# Hashes looked at for one query, nearest first: each costs a document read (for its signature).
SIMILAR_CANDIDATES = 1000
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class UploadTooLargeError(PaktumError):
    """The request body is larger than PAKTUM_SIMILAR_MAX_BYTES allows."""


@dataclass(frozen=True)
class Found:
    doc: ImageDocument
    distance: int
    transform: str  # how the found image shows the query picture ("mirror": mirrored)


def query_hashes(data: bytes, max_pixels: int, thumbnail_size: int, phash_mode: str) -> PictureHashes:
    """The hashes of a picture, as the hasher would compute them (to floating-point rounding): a JPEG in the fast
    pHash mode decoded at the hasher's reduced scale (draft_box of PAKTUM_THUMBNAIL_SIZE), which moves bits."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            opened = Image.open(io.BytesIO(data))
            if opened.width * opened.height > max_pixels:
                raise BadImageError(
                    f"image has {opened.width * opened.height} pixels, more than the limit of {max_pixels} "
                    "(PAKTUM_MAX_IMAGE_PIXELS)"
                )
            if phash_mode == "fast" and opened.format in ("JPEG", "MPO"):
                opened.draft(None, draft_box(opened.width, opened.height, thumbnail_size))
            image = ImageOps.exif_transpose(opened)
            image.load()
            if not (image.mode in ALPHA_MODES or "transparency" in image.info):
                return with_hues(_hashes(image), _hue_mark(image))
            rgba = image.convert("RGBA")
            pictures = {"white": _flatten(rgba, (255, 255, 255)), "black": _flatten(rgba, (0, 0, 0)), "stored": image}
            hashes, hashed = transparent_hashes(
                _hashes(pictures["white"]), _hashes(pictures["black"]), lambda: _hashes(image)
            )
            return with_hues(hashes, _hue_mark(pictures[hashed]))  # of the picture hashed, as the hasher takes it
    except BadImageError:
        raise
    except UnidentifiedImageError as exc:
        raise BadImageError("not an image (unidentified format)") from exc
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        IndexError,
        KeyError,
        TypeError,
        Image.DecompressionBombError,
    ) as exc:
        raise BadImageError(f"cannot decode image: {exc}") from exc


LANCZOS = Image.Resampling.LANCZOS


def _hashes(image: Image.Image) -> PictureHashes:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        image = Image.fromarray((np.asarray(image).astype(np.uint32).clip(0, 65535) >> 8).astype(np.uint8), "L")
    grey = image.convert("L")
    small = grey.resize((PICTURE_SIDE, PICTURE_SIDE), LANCZOS)
    # A radial picture's number of points and their band, read as the hasher reads them
    # (paktum_hasher.phash.angular_pixels).
    wide = (ANGULAR_SIDE, ANGULAR_SIDE)
    return picture_hashes(dct_32(np.asarray(small)), lambda: angular_reading(np.asarray(grey.resize(wide, LANCZOS))))


def _hue_mark(picture: Image.Image) -> bytes:
    """Its hue mark from the picture in colour, reduced as the hasher reduces it (paktum_hasher.phash.hue_pixels)."""
    return hue_mark(np.asarray(picture.convert("RGB").resize((HUE_SIDE, HUE_SIDE), Image.Resampling.BOX)))


def _flatten(rgba: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    flat = Image.new("RGB", rgba.size, colour)
    flat.paste(rgba, (0, 0), rgba)
    return flat


async def nearest_images(
    state: AppState,
    plain: int,
    alternates: tuple[int, ...],
    symmetry: Symmetry | None,
    distance: int,
    limit: int,
    exclude: str = "",
    signature: bytes = b"",
) -> list[Found]:
    """The indexed images that match the picture at `distance` as paktum_common.phash.match says (through any
    alternate of either, by symmetric hashes when one is symmetric, a plain pair in the distance's last bits only
    when the picture's `signature` and theirs agree, signature neighbours found by its SimHash, never two of other
    hues: as the regroup links them), nearest first. At most SIMILAR_CANDIDATES of the nearest hashes are looked
    at."""
    code = simhash_of(signature)
    near = (await IMAGES.near_any(state.redis, [(plain, *alternates)], distance, [symmetry], [code]))[0]
    md5s = [md5 for md5, _ in near if md5 != exclude][:SIMILAR_CANDIDATES]
    if not md5s:
        return []
    stored, stored_alternates, stored_symmetry = await IMAGES.stored(state.redis, md5s)
    docs = await state.search.get_documents(md5s)
    measured = []
    for md5 in md5s:
        if md5 in stored and md5 in docs:
            theirs = stored_alternates.get(md5, ())
            marks = (signature, docs[md5].signature)
            bits, how = match(
                plain, alternates, stored[md5], theirs, symmetry, stored_symmetry.get(md5), distance, marks
            )
            if bits < NO_MATCH:
                measured.append((bits, md5, how))
    # Nearest first; at the same distance the picture as it is before a mirrored or turned one, then by ID.
    measured.sort(key=lambda m: (m[0], m[2] != "none", m[1]))
    return [Found(docs[md5], bits, how) for bits, md5, how in measured[:limit]]


def parse_distance(raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return min(default, SIMILAR_MAX_DISTANCE)
    return whole_number(raw, "distance", 0, SIMILAR_MAX_DISTANCE)


async def picture_from_url(state: AppState, url: str) -> bytes:
    """The picture at `url`, through the hasher's guarded download (public addresses only, size-capped)."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise BadPostError(f"url must be an http or https URL, got {url!r}")
    return await download(url, state.settings, state.settings.similar_max_bytes, limit_name="PAKTUM_SIMILAR_MAX_BYTES")


async def hash_picture(state: AppState, data: bytes) -> PictureHashes:
    """query_hashes off the event loop, within PAKTUM_SIMILAR_TIMEOUT_SECONDS."""
    seconds = state.settings.similar_timeout_seconds
    try:
        settings = state.settings
        hashing = asyncio.to_thread(
            query_hashes, data, settings.max_image_pixels, settings.thumbnail_size, settings.phash_mode
        )
        return await asyncio.wait_for(hashing, seconds)
    except TimeoutError:
        raise BadImageError(
            f"the picture took longer than {seconds} s to decode (PAKTUM_SIMILAR_TIMEOUT_SECONDS)"
        ) from None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadTooLargeError(f"the request is {declared} bytes, more than {limit} (PAKTUM_SIMILAR_MAX_BYTES)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadTooLargeError(f"the request is more than {limit} bytes (PAKTUM_SIMILAR_MAX_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


async def _picture_of(request: Request, state: AppState) -> tuple[bytes, dict[str, str]]:
    """The picture's bytes from a multipart upload (field `file`), a JSON body {"url": ...} or a raw image body,
    and the form or JSON fields beside it."""
    limit = state.settings.similar_max_bytes
    body = await _read_body(request, limit + FORM_ENVELOPE)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
        except StarletteHTTPException as exc:  # starlette's own refusal of a malformed or oversized form
            raise BadPostError(f"the multipart body is malformed: {exc.detail}") from None
        upload = form.get("file")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if isinstance(upload, UploadFile):
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise UploadTooLargeError(f"the picture is more than {limit} bytes (PAKTUM_SIMILAR_MAX_BYTES)")
            return data, fields
        if fields.get("url"):
            return await picture_from_url(state, fields["url"]), fields
        raise BadImageError("no picture: send it as the form field `file`, or a `url` field")
    if kind == "application/json":
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise BadPostError(f"the body is not JSON: {exc}") from None
        if not isinstance(payload, dict) or not payload.get("url"):
            raise BadPostError('the JSON body must be {"url": "https://..."}')
        fields = {k: str(v) for k, v in payload.items() if k in ("distance", "limit")}
        return await picture_from_url(state, payload["url"]), fields
    if not body:
        raise BadImageError('no picture: upload one (multipart field `file`) or send {"url": ...} as JSON')
    if len(body) > limit:
        raise UploadTooLargeError(f"the picture is more than {limit} bytes (PAKTUM_SIMILAR_MAX_BYTES)")
    return body, {}


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"results": [], "distances": [], "transforms": [], "error": message}, status_code=status)


@router.post(
    "/api/similar",
    response_model=None,
    responses={200: {"model": SimilarAnswer}, **answers(SimilarAnswer, 400, 401, 413, 503)},
    openapi_extra={
        "requestBody": SIMILAR_BODY,
        "parameters": [
            query_parameter(
                "distance",
                "Keep those within this many bits (default PAKTUM_VARIANT_DISTANCE)",
                {"type": "integer", "minimum": 0, "maximum": 12},
            ),
            query_parameter(
                "limit", "At most this many, nearest first", {"type": "integer", "minimum": 1, "maximum": 100}
            ),
        ],
    },
)
async def similar_images(request: Request) -> JSONResponse:
    """The indexed images nearest to a picture: a multipart upload (field `file`), a JSON body `{"url": ...}`, or
    the image itself as the body. `distance` (0-12, default PAKTUM_VARIANT_DISTANCE) and `limit` (1-100, default
    20) as query parameters or fields. Nearest first; `distances` and `transforms` go with `results`, one each."""
    state: AppState = request.app.state.paktum
    try:
        data, fields = await _picture_of(request, state)
        distance = parse_distance(
            request.query_params.get("distance", fields.get("distance")), state.settings.variant_distance
        )
        limit = parse_limit(
            request.query_params.get("limit", fields.get("limit")), SIMILAR_LIMIT_DEFAULT, SIMILAR_LIMIT_MAX
        )
        hashes = await hash_picture(state, data)
        found = await nearest_images(
            state, hashes.plain, hashes.alternates, hashes.symmetry, distance, limit, signature=hashes.signature
        )
    except UploadTooLargeError as exc:
        return _error(str(exc), 413)
    except (InvalidQueryError, BadImageError, BadPostError) as exc:
        return _error(str(exc), 400)
    except SearchUnavailableError as exc:
        return _error(f"search unavailable: {exc}", 503)
    except PaktumError as exc:  # the picture's URL answered an error, timed out or could not be resolved
        return _error(f"cannot fetch the picture: {exc}", 400)
    return JSONResponse(
        {
            "results": [rest_image(state, request, f.doc) for f in found],
            "distances": [f.distance for f in found],
            "transforms": [f.transform for f in found],
            "error": "",
        }
    )


async def similar_to(
    state: AppState, url: str | None, image_id: str | None, distance: int | None, limit: int | None
) -> list[Found]:
    """GraphQL's similarImages: by the picture at `url` (fetched, hashed, not indexed) or by an indexed image's
    `ID` (its stored hashes; the image itself is left out of the answer)."""
    if (url is None) == (image_id is None):
        raise InvalidQueryError("give exactly one of url and ID")
    bits = parse_distance(None if distance is None else str(distance), state.settings.variant_distance)
    count = parse_limit(None if limit is None else str(limit), SIMILAR_LIMIT_DEFAULT, SIMILAR_LIMIT_MAX)
    if url is not None:
        hashes = await hash_picture(state, await picture_from_url(state, url))
        return await nearest_images(
            state, hashes.plain, hashes.alternates, hashes.symmetry, bits, count, signature=hashes.signature
        )
    wanted = str(image_id).strip().lower()
    doc = await state.search.get_document(wanted)
    if doc is None:
        raise InvalidQueryError(f"no image with ID {image_id!r}")
    return await nearest_images(
        state, doc.PHash, doc.PHashAlternates, doc.symmetry, bits, count, exclude=doc.ID, signature=doc.signature
    )
