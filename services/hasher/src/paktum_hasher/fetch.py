"""Get a post's bytes: local files for `paktum import`, guarded streaming downloads for scraped posts,
and a video's first frame (via ffmpeg) as the picture to index."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

from paktum_common import download as guarded
from paktum_common.contracts import LOCAL_SOURCE, VIDEO_EXTENSIONS, extension_of
from paktum_common.errors import BadImageError, BadPostError, SourceReadError
from paktum_common.settings import Settings

# The guarded download lives in the common library (the api's search by image uses it too).
_tls = guarded._tls
resolve = guarded.resolve
FFMPEG_SECONDS = 60
USER_AGENT = "Paktum (self-hosted image server; paktum-hasher)"
download = partial(guarded.download, user_agent=USER_AGENT)


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
        data = await asyncio.to_thread(_read_file, Path(unquote(url.path)), settings.max_file_bytes)
    elif url.scheme in ("http", "https"):
        data = await download(file_url, settings)
    else:
        raise BadPostError(f"unsupported file URL scheme {url.scheme!r}: {file_url}")
    video_ext = video_ext or sniff_video(data)
    if video_ext is None:
        return Media(data, data)
    return Media(data, await first_frame(data, video_ext), video_ext)


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise SourceReadError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise SourceReadError(f"{path} is larger than {max_bytes} bytes (PAKTUM_MAX_FILE_BYTES)")
    return data


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
