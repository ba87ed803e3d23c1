"""Uploads: multipart files staged under the data dir, published as local posts, and their outcome per file.

An uploaded file takes the path of every other post: it is written (0600, atomically) into
`<data_dir>/uploads/`, an allowed local root, and published on the ingest stream as a local post; the hasher
and the catalog's bans decide. The api removes a staged file once its outcome is known (while the request
waits, or at the follow-up `GET /api/upload/{md5}`); every SWEEP_SECONDS it removes those of images indexed
meanwhile (an upload that answered pending and was never asked about again), and any older than STALE_SECONDS.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from python_multipart.multipart import parse_options_header
from redis.exceptions import RedisError, ResponseError

from paktum_api.admin import presented_token, upload_token_valid
from paktum_api.openapi import ErrorAnswer, UploadAnswer, UploadStatusAnswer, answers, query_parameter
from paktum_api.state import AppState
from paktum_api.upload_form import PARTIAL, Staged, UploadParser, UploadRefusedError
from paktum_common.contracts import LOCAL_SOURCE, DeadLetter, Post, Rating, normalize_tags
from paktum_common.errors import BadPostError, PaktumError
from paktum_common.local_roots import allow_root
from paktum_common.log import log_event
from paktum_common.queue import IngestQueue
from paktum_common.redis_client import as_text
from paktum_common.settings import Settings

router = APIRouter()
log = logging.getLogger("paktum.api.upload")

UPLOAD_PATH = "/api/upload"
WAIT_DEFAULT = 5.0
WAIT_MAX = 30.0
POLL_SECONDS = 0.25
STALE_SECONDS = 24 * 3600  # a staged file this old has no request waiting for it any more
DEAD_LETTERS_SCANNED = 2000  # the newest dead letters looked through for an upload's refusal
SWEEP_SECONDS = 300.0
SWEEP_MAX_FILES = 5000  # staged files looked at per sweep: bounded work, the next sweep takes the rest

Status = Literal["indexed", "exists", "refused", "pending"]


@dataclass
class FileResult:
    filename: str
    id: str
    status: Status
    reason: str = ""

    def to_json(self) -> dict[str, str]:
        return {"filename": self.filename, "ID": self.id, "status": self.status, "reason": self.reason}


def prepare_staging(settings: Settings) -> Path:
    """Create the staging folder, allow it for the hashers, and sweep what stale uploads left there."""
    folder = settings.upload_staging_dir
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    allow_root(settings, folder)
    cutoff = time.time() - STALE_SECONDS
    for path in folder.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                log_event(log, logging.INFO, "stale upload removed", path=str(path))
        except OSError as exc:
            log_event(log, logging.WARNING, "stale upload not removed", path=str(path), reason=str(exc))
    return folder


async def sweep_staging(state: AppState) -> int:
    """Remove staged files whose image is indexed, and any (a request's partial file too) older than STALE_SECONDS;
    returns how many were removed."""
    folder = state.settings.upload_staging_dir
    cutoff = time.time() - STALE_SECONDS

    def listed() -> list[tuple[Path, float]]:
        found = []
        for path in itertools.islice(folder.iterdir(), SWEEP_MAX_FILES):
            try:
                found.append((path, path.stat().st_mtime))
            except FileNotFoundError:  # its request removed it meanwhile
                continue
        return found

    stale: list[Path] = []
    by_md5: dict[str, list[Path]] = {}
    for path, mtime in await asyncio.to_thread(listed):
        if mtime < cutoff:
            stale.append(path)
        elif not path.name.startswith(PARTIAL):
            by_md5.setdefault(path.name.partition("-")[0], []).append(path)
    indexed = await state.search.get_documents(list(by_md5)) if by_md5 else {}
    gone = [*stale, *(path for md5 in indexed for path in by_md5[md5])]
    for path in gone:
        path.unlink(missing_ok=True)
    if gone:
        log_event(log, logging.INFO, "staged uploads removed", indexed=len(gone) - len(stale), stale=len(stale))
    return len(gone)


async def keep_staging_clean(state: AppState) -> None:
    """The api's background sweep of the staging folder, every SWEEP_SECONDS, for as long as it runs."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            await sweep_staging(state)
        except (OSError, PaktumError, RedisError) as exc:  # the folder, the index or Redis away: next time
            log_event(log, logging.WARNING, "staged uploads not swept", reason=str(exc) or type(exc).__name__)


def options(fields: dict[str, str], query: dict[str, str]) -> tuple[list[str], Rating, str, float]:
    """Tags, rating, source URL and wait, from the form (the query string may give `wait` too)."""
    tags = normalize_tags(fields.get("tags", ""))
    try:
        rating = Rating.parse(fields.get("rating") or "general")
    except BadPostError as exc:
        raise UploadRefusedError(400, str(exc)) from exc
    waits = [seconds(raw) for raw in (query.get("wait"), fields.get("wait")) if raw is not None]
    wait = waits[-1] if waits else WAIT_DEFAULT  # the form's, if both say
    return tags, rating, checked_source_url(fields.get("source_url", "")), wait


def checked_source_url(raw: str) -> str:
    source_url = raw.strip()
    if source_url and (not source_url.startswith(("http://", "https://")) or len(source_url) > 2048):
        raise UploadRefusedError(400, "source_url must be an http(s) URL of at most 2048 characters")
    return source_url


def seconds(raw: str) -> float:
    try:
        wait = float(raw)
    except ValueError:
        raise UploadRefusedError(400, f"wait must be a number of seconds (at most {WAIT_MAX:g})") from None
    return checked_wait(wait)


def checked_wait(wait: float) -> float:
    if not 0 <= wait <= WAIT_MAX:  # also refuses nan
        raise UploadRefusedError(400, f"wait must be between 0 and {WAIT_MAX:g} seconds")
    return wait


async def refusal_of(state: AppState, md5: str) -> str | None:
    """The reason of the newest dead letter of an uploaded post of this md5, if any."""
    prefix = state.settings.upload_staging_dir.resolve().as_uri() + "/"
    upper, scanned = "+", 0
    while scanned < DEAD_LETTERS_SCANNED:
        page: Any = await state.redis.xrevrange(state.settings.dead_letter_stream, max=upper, min="-", count=500)
        for _, fields in page:
            try:
                letter = DeadLetter.from_stream(fields)
                post = Post.from_stream(letter.fields)
            except BadPostError:
                continue
            if post.md5 == md5 and post.source == LOCAL_SOURCE and post.file_url.startswith(prefix):
                return letter.reason
        if len(page) < 500:
            return None
        scanned += len(page)
        upper = f"({as_text(page[-1][0])}"
    return None


async def outcome(state: AppState, md5: str) -> tuple[Status, str]:
    if await state.search.get_document(md5) is not None:
        return "indexed", ""
    reason = await refusal_of(state, md5)
    return ("refused", reason) if reason is not None else ("pending", "")


def remove_staged(settings: Settings, md5: str) -> None:
    """Every staged file of this md5: its outcome is known, the image store has its own copy or none is kept."""
    for path in settings.upload_staging_dir.glob(f"{md5}-*"):
        path.unlink(missing_ok=True)


def is_staged(settings: Settings, md5: str) -> bool:
    return any(settings.upload_staging_dir.glob(f"{md5}-*"))


async def upload_status(state: AppState, md5: str) -> tuple[Status, str] | None:
    """The outcome of an upload of this md5 (lower-case hex), its staged file removed once known; None when no
    upload of it is known (never uploaded, or swept long after)."""
    if len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5):
        return None
    status, reason = await outcome(state, md5)
    if status != "pending":
        remove_staged(state.settings, md5)
    elif not is_staged(state.settings, md5):
        return None
    return status, reason


def boundary_of(request: Request, refusal: str) -> bytes:
    """The multipart boundary of the request; UploadRefusedError(415, refusal) when it is not multipart."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadRefusedError(415, refusal)
    return boundary


async def stage(request: Request, parser: UploadParser) -> None:
    """Stream the request's body through `parser` (files into staging); on any failure nothing stays staged."""
    try:
        async for chunk in request.stream():
            await asyncio.to_thread(parser.write, chunk)
        parser.finish()
    except BaseException:
        parser.discard()
        raise


async def publish_staged(
    state: AppState, files: list[Staged], tags: list[str], rating: Rating, source_url: str
) -> list[FileResult]:
    """Answer what is known at once (not an image, already indexed) and publish the rest as local posts."""
    results, posts = await _admit(state, files, tags, rating, source_url)
    await IngestQueue(state.redis, state.settings).publish_posts([post for _, post in posts])
    for staged, _ in posts:
        staged.published = True
    log_event(log, logging.INFO, "upload published", files=len(files), published=len(posts))
    return results


async def outcomes(state: AppState, results: list[FileResult], wait: float) -> list[FileResult]:
    """Wait up to `wait` seconds for the hasher's word on each pending file; staged files go once it is known."""
    if any(r.status == "pending" for r in results) and not await hasher_reading(state):
        wait = 0  # no hasher is reading the stream: nothing will change while this request waits
    deadline = time.monotonic() + wait
    while True:
        for result in results:
            if result.status == "pending":
                result.status, result.reason = await outcome(state, result.id)
                if result.status != "pending":
                    remove_staged(state.settings, result.id)
        if all(r.status != "pending" for r in results) or time.monotonic() >= deadline:
            return results
        await asyncio.sleep(POLL_SECONDS)


async def upload(state: AppState, request: Request) -> list[FileResult]:
    """Stage the request's files, publish them, and wait (bounded) for their outcomes."""
    parser = UploadParser(state.settings, boundary_of(request, "an upload is multipart/form-data with `file` parts"))
    await stage(request, parser)
    try:
        tags, rating, source_url, wait = options(parser.fields, dict(request.query_params))
        if not parser.files:
            raise UploadRefusedError(400, "no `file` part in the upload")
        results = await publish_staged(state, parser.files, tags, rating, source_url)
    finally:
        parser.discard()  # what was not published (the request failed before, or it was not an image)
    return await outcomes(state, results, wait)


async def hasher_reading(state: AppState) -> bool:
    """Whether a hasher is reading the stream now: a consumer of the group that asked for entries lately (a
    consumer idle past the queue's reclaim time counts as dead there too, and a live one asks every block)."""
    settings = state.settings
    lately = max(settings.reclaim_idle_ms, 10 * settings.read_block_ms)
    try:
        consumers: Any = await state.redis.xinfo_consumers(settings.stream, settings.consumer_group)
    except ResponseError:  # no stream or no group yet: no hasher has ever read
        return False
    return any(int(consumer["idle"]) <= lately for consumer in consumers)


async def _admit(
    state: AppState, files: list[Staged], tags: list[str], rating: Rating, source_url: str
) -> tuple[list[FileResult], list[tuple[Staged, Post]]]:
    results: list[FileResult] = []
    posts: list[tuple[Staged, Post]] = []
    for staged in files:
        if staged.problem or staged.path is None:
            results.append(FileResult(staged.filename, "", "refused", staged.problem))
            continue
        md5 = staged.md5.hexdigest()
        if await state.search.get_document(md5) is not None:
            staged.path.unlink(missing_ok=True)
            results.append(FileResult(staged.filename, md5, "exists"))
            continue
        results.append(FileResult(staged.filename, md5, "pending"))
        url = staged.path.resolve().as_uri()
        source_id = f"upload/{staged.path.name}"
        post = Post(source=LOCAL_SOURCE, source_id=source_id, md5=md5, file_url=url, tags=tags, rating=rating)
        posts.append((staged, post.model_copy(update={"page_url": source_url})))
    return results, posts


def uploader_problem(settings: Settings, token: str | None) -> tuple[int, str] | None:
    """Why `token` may not upload (the status code and the reason), or None: it is the admin or upload token."""
    if settings.admin_token is None and settings.upload_token is None:
        return 403, "uploads are off: neither PAKTUM_ADMIN_TOKEN nor PAKTUM_UPLOAD_TOKEN is set"
    if not upload_token_valid(settings, token):
        return 401, "this needs the admin or upload token: Authorization: Bearer <token>"
    return None


def _refusal(state: AppState, request: Request) -> JSONResponse | None:
    problem = uploader_problem(state.settings, presented_token(request))
    return None if problem is None else JSONResponse({"error": problem[1]}, problem[0])


WAIT_SCHEMA = {"type": "number", "minimum": 0, "maximum": WAIT_MAX}
UPLOAD_FORM: dict[str, object] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1},
        "tags": {"type": "string", "description": "Tags for every file, separated by spaces"},
        "rating": {"type": "string", "enum": [rating.value for rating in Rating]},
        "source_url": {"type": "string", "description": "Where the picture comes from (http or https)"},
        "wait": WAIT_SCHEMA,
    },
}
UPLOAD_ERRORS = {
    **answers(ErrorAnswer, 503),
    400: {"model": ErrorAnswer, "description": "A form field is malformed, or more files than PAKTUM_UPLOAD_MAX_FILES"},
    401: {"model": ErrorAnswer, "description": "Neither the admin token nor the upload token was given"},
    403: {"model": ErrorAnswer, "description": "Uploads are off (no PAKTUM_ADMIN_TOKEN nor PAKTUM_UPLOAD_TOKEN)"},
}


@router.post(
    UPLOAD_PATH,
    response_model=None,
    responses={
        200: {"model": UploadAnswer},
        **UPLOAD_ERRORS,
        413: {"model": ErrorAnswer, "description": "A file or the whole body is too large"},
        415: {"model": UploadAnswer, "description": "Not multipart/form-data, or no file is an image"},
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": UPLOAD_FORM}}},
        "parameters": [query_parameter("wait", "Seconds to wait for the outcome", WAIT_SCHEMA)],
    },
)
async def upload_route(request: Request) -> JSONResponse:
    """Upload images: multipart `file` parts (one or more), `tags` (space-separated), `rating`, `source_url`,
    `wait` (seconds, at most 30). Per file: its ID (md5) and `indexed`, `exists`, `refused` (why) or `pending`."""
    state: AppState = request.app.state.paktum
    refusal = _refusal(state, request)
    if refusal is not None:
        return refusal
    try:
        results = await upload(state, request)
    except UploadRefusedError as exc:
        return JSONResponse({"files": [], "error": str(exc)}, exc.status, headers={"Connection": "close"})
    answer = [r.to_json() for r in results]
    if all(r.status == "refused" and not r.id for r in results):
        return JSONResponse({"files": answer, "error": "no file of the upload is an image"}, 415)
    return JSONResponse({"files": answer, "error": ""})


@router.get(
    UPLOAD_PATH + "/{md5}",
    response_model=None,
    responses={
        200: {"model": UploadStatusAnswer},
        **UPLOAD_ERRORS,
        404: {"model": ErrorAnswer, "description": "No upload with this ID is known (or it was so long ago)"},
    },
)
async def upload_status_route(request: Request, md5: str) -> JSONResponse:
    """The outcome of an upload that answered `pending`: `indexed`, `refused` (why) or still `pending`."""
    state: AppState = request.app.state.paktum
    refusal = _refusal(state, request)
    if refusal is not None:
        return refusal
    md5 = md5.strip().lower()
    found = await upload_status(state, md5)
    if found is None:
        return JSONResponse({"error": f"no upload with ID {md5!r} is known"}, 404)
    status, reason = found
    return JSONResponse({"ID": md5, "status": status, "reason": reason, "error": ""})
