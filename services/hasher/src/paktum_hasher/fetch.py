"""Get a post's bytes: local files for `paktum import`, guarded streaming downloads for scraped posts,
and a video's first frame (via ffmpeg) as the picture to index."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

from paktum_common import download as guarded
from paktum_common.contracts import LOCAL_SOURCE, VIDEO_EXTENSIONS, extension_of
from paktum_common.errors import BadImageError, BadPostError, SourceReadError
from paktum_common.local_roots import allowed_roots, is_under
from paktum_common.log import log_event
from paktum_common.settings import Settings

# The guarded download lives in the common library (the api's search by image uses it too).
_tls = guarded._tls
resolve = guarded.resolve
FFMPEG_SECONDS = 60
USER_AGENT = "Paktum (self-hosted image server; paktum-hasher)"
download = partial(guarded.download, user_agent=USER_AGENT)

log = logging.getLogger("paktum.hasher")


class VideoSkippedError(BadImageError):
    """A video post, and this hasher has no ffmpeg to take its first frame."""


@dataclass(frozen=True)
class Media:
    """The file as the source serves it, and the picture to decode from it (the file itself, or a video's frame)."""

    data: bytes
    picture: bytes
    ext: str | None = None  # the stored file's extension when it is not the picture's (videos)


async def fetch_media(post_source: str, file_url: str, settings: Settings) -> Media:
    url = urlsplit(file_url)
    named = extension_of(url.path)
    video_ext = named if named in VIDEO_EXTENSIONS else None
    if video_ext and shutil.which("ffmpeg") is None:
        # Known before downloading: spare the site the transfer.
        raise VideoSkippedError(f"video post skipped: ffmpeg is not installed on this hasher ({file_url})")
    if url.scheme == "file":
        if post_source != LOCAL_SOURCE:
            # Only our own importer may point at the disk; a scraped post never may.
            raise BadPostError(f"file URL from source {post_source!r} refused: {file_url}")
        data = await asyncio.to_thread(read_local_file, file_url, settings)
    elif url.scheme in ("http", "https"):
        data = await download(file_url, settings)
    else:
        raise BadPostError(f"unsupported file URL scheme {url.scheme!r}: {file_url}")
    return await media_of(data, video_ext)


async def media_of(data: bytes, video_ext: str | None) -> Media:
    """A file as Media: a video (by `video_ext`, its name's, or else by its magic bytes) decoded from its first
    frame, any other file from itself."""
    video_ext = video_ext or sniff_video(data)
    if video_ext is None:
        return Media(data, data)
    return Media(data, await first_frame(data, video_ext), video_ext)


def read_local_file(file_url: str, settings: Settings) -> bytes:
    """The bytes of a regular file under a folder the operator allowed (never what the post claims).

    Whatever the cause (outside the allowed folders, missing, a FIFO, a device, a directory, a /proc entry,
    unreadable), the refusal reads the same, so that a post cannot learn what exists on the disk; the
    hasher's log says which. The file is opened without following a last symlink and without blocking
    (a FIFO would otherwise wait for a writer forever), then checked to be a regular file.
    """
    url = urlsplit(file_url)
    refused = SourceReadError(
        f"local file refused: {file_url} is not a readable file in a folder allowed for local posts "
        "(the folder `paktum import` was given, or PAKTUM_LOCAL_ROOTS)"
    )
    roots = allowed_roots(settings)
    try:
        if url.netloc not in ("", "localhost"):
            raise _Refusal("a file URL naming another host")
        path = os.path.realpath(unquote(url.path), strict=True)  # symlinks and `..` resolved before the check
        if not is_under(path, roots):
            raise _Refusal("outside the allowed folders")
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError, _Refusal) as exc:
        log_event(log, logging.WARNING, "local file refused", url=file_url, reason=_why(exc))
        raise refused from None
    try:
        info = os.fstat(descriptor)
        opened = _opened_path(descriptor)
        # A zero size is what /proc and sysfs report for their generated files: not an image either way.
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0 or (opened is not None and not is_under(opened, roots)):
            log_event(log, logging.WARNING, "local file refused", url=file_url,
                      reason=f"not a regular file with content (mode {stat.filemode(info.st_mode)})")  # fmt: skip
            raise refused
        if info.st_size > settings.max_file_bytes:
            raise SourceReadError(f"{file_url} is larger than {settings.max_file_bytes} bytes (PAKTUM_MAX_FILE_BYTES)")
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(info.st_size + 1)
    except OSError as exc:
        log_event(log, logging.WARNING, "local file refused", url=file_url, reason=_why(exc))
        raise refused from None
    finally:
        os.close(descriptor)
    if len(data) > settings.max_file_bytes:
        raise SourceReadError(f"{file_url} is larger than {settings.max_file_bytes} bytes (PAKTUM_MAX_FILE_BYTES)")
    return data


class _Refusal(Exception):
    """Why a local path is refused, for the log only."""


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


def _opened_path(descriptor: int) -> str | None:
    """The path the kernel opened (Linux): a folder swapped for a symlink after the check is caught here."""
    try:
        return os.readlink(f"/proc/self/fd/{descriptor}")
    except OSError:
        return None


def sniff_video(data: bytes) -> str | None:
    """The container of a video file by its magic bytes, for URLs that do not say."""
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"  # EBML: Matroska/WebM
    if data[4:8] == b"ftyp" and data[8:12] not in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"):
        return "mp4"
    return None


async def first_frame(data: bytes, ext: str) -> bytes:
    """The first frame as PNG, from ffmpeg in a subprocess (a temporary file: MP4 may need to seek)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise VideoSkippedError("video post skipped: ffmpeg is not installed on this hasher")
    with tempfile.TemporaryDirectory(prefix="paktum-video-") as folder:
        source = Path(folder) / f"video.{ext}"
        await asyncio.to_thread(source.write_bytes, data)
        process = await asyncio.create_subprocess_exec(
            ffmpeg, "-nostdin", "-v", "error", "-i", str(source), "-frames:v", "1",
            "-f", "image2pipe", "-c:v", "png", "-",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with asyncio.timeout(FFMPEG_SECONDS):
                out, err = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise BadImageError(f"ffmpeg took more than {FFMPEG_SECONDS}s for the first frame") from None
    if process.returncode != 0 or not out:
        message = err.decode(errors="replace").strip().splitlines()
        raise BadImageError(f"ffmpeg cannot read the video: {message[-1] if message else 'no frame'}")
    return out
