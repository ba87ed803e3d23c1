"""The multipart body of an upload, parsed as it streams: file parts into staging files, bounded text fields."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.exceptions import ParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from paktum_common.errors import PaktumError
from paktum_common.settings import Settings

FIELD_MAX_BYTES = 64 * 1024  # tags, rating, source_url, wait: text, not files
HEADER_MAX_BYTES = 8192
PARTIAL = ".part-"


class UploadRefusedError(PaktumError):
    """The request as a whole is refused (its status code says why); nothing of it stays staged."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Staged:
    """One file part: its name as sent, and once complete, its md5 and the staged path."""

    filename: str
    partial: Path
    name: str = "file"  # the part's form field name (a GraphQL multipart request names each file part)
    handle: Any = None
    md5: Any = field(default_factory=hashlib.md5)
    size: int = 0
    head: bytes = b""
    path: Path | None = None
    ext: str = ""
    problem: str = ""  # refused up front (not an image): the reason
    published: bool = False  # on the stream: the hasher's now, and removed once its outcome is known


def sniff_image(head: bytes) -> str:
    """The image format by its first bytes ("" when it is none the hasher decodes)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "avif"
    return ""


def file_field(name: str) -> None:
    """POST /api/upload's rule for a file part: it is a `file` field."""
    if name != "file":
        raise UploadRefusedError(400, f"unexpected file field {name!r}: files go in `file` parts")


class UploadParser:
    """Feeds a multipart body to python-multipart's streaming parser: file parts go to staging files in
    chunks, under the per-file and per-request limits; text fields are kept, bounded.

    `check_file` refuses a file part by its field name (raising UploadRefusedError) before a byte of it is
    staged; `field_limits`, when given, names the only text fields allowed and the bytes each may have.
    """

    def __init__(
        self,
        settings: Settings,
        boundary: bytes,
        check_file: Callable[[str], None] = file_field,
        field_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.settings = settings
        self.check_file = check_file
        self.field_limits = field_limits
        self._field_max = FIELD_MAX_BYTES
        self.folder = settings.upload_staging_dir
        self.files: list[Staged] = []
        self.fields: dict[str, str] = {}
        self._headers: dict[str, str] = {}
        self._header_field = b""
        self._header_value = b""
        self._name = ""
        self._text = bytearray()
        self._file: Staged | None = None
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": lambda d, s, e: self._add("_header_field", d[s:e]),
                "on_header_value": lambda d, s, e: self._add("_header_value", d[s:e]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def write(self, chunk: bytes) -> None:
        with _refusals():
            self._parser.write(chunk)

    def finish(self) -> None:
        with _refusals():
            self._parser.finalize()
        if self._file is not None:
            raise UploadRefusedError(400, "the multipart body ends inside a file")

    def discard(self) -> None:
        """Remove every file this request staged and did not publish (on any failure, or when no one took it)."""
        for staged in self.files:
            if staged.published:
                continue
            if staged.handle is not None:
                staged.handle.close()
            for path in (staged.partial, staged.path):
                if path is not None:
                    path.unlink(missing_ok=True)

    def _add(self, name: str, data: bytes) -> None:
        value = getattr(self, name) + data
        if len(value) > HEADER_MAX_BYTES:
            raise UploadRefusedError(400, "a multipart header is too long")
        setattr(self, name, value)

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = self._header_value.decode("latin-1")
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._text = bytearray()
        if filename is None:
            self._field_max = self._limit_of(self._name)
            return
        self.check_file(self._name)
        if len(self.files) >= self.settings.upload_max_files:
            raise UploadRefusedError(
                400, f"at most {self.settings.upload_max_files} files per upload (PAKTUM_UPLOAD_MAX_FILES)"
            )
        partial = self.folder / f"{PARTIAL}{secrets.token_hex(8)}"
        staged = Staged(filename.decode("utf-8", "replace")[:255], partial, self._name)
        self.files.append(staged)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        staged.handle = os.fdopen(descriptor, "wb")
        self._file = staged

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        staged = self._file
        if staged is None:
            if len(self._text) + len(piece) > self._field_max:
                raise UploadRefusedError(400, f"the form field {self._name!r} is longer than {self._field_max} bytes")
            self._text += piece
            return
        staged.size += len(piece)
        if staged.size > self.settings.max_file_bytes:
            raise UploadRefusedError(
                413, f"{staged.filename!r} is larger than {self.settings.max_file_bytes} bytes (PAKTUM_MAX_FILE_BYTES)"
            )
        if len(staged.head) < 16:
            staged.head += piece[: 16 - len(staged.head)]
        staged.md5.update(piece)
        staged.handle.write(piece)

    def _limit_of(self, name: str) -> int:
        if self.field_limits is None:
            return FIELD_MAX_BYTES
        if name not in self.field_limits:
            expected = ", ".join(f"`{known}`" for known in self.field_limits)
            raise UploadRefusedError(400, f"unexpected form field {name!r}: this form has {expected} and files")
        return self.field_limits[name]

    def _part_end(self) -> None:
        staged, self._file = self._file, None
        if staged is None:
            self.fields[self._name] = self._text.decode("utf-8", "replace")
            return
        staged.handle.flush()
        os.fsync(staged.handle.fileno())
        staged.handle.close()
        staged.handle = None
        staged.ext = sniff_image(staged.head)
        if not staged.ext:
            staged.problem = "not an image (by its first bytes): JPEG, PNG, GIF, WebP, BMP, TIFF or AVIF"
            staged.partial.unlink(missing_ok=True)
            return
        md5 = staged.md5.hexdigest()
        staged.path = self.folder / f"{md5}-{secrets.token_hex(4)}.{staged.ext}"
        os.replace(staged.partial, staged.path)


@contextmanager
def _refusals() -> Iterator[None]:
    """A malformed body is the client's 400; a staging file that cannot be written (disk full) a 503."""
    try:
        yield
    except ParseError as exc:
        raise UploadRefusedError(400, f"not a well-formed multipart body: {exc}") from None
    except OSError as exc:
        raise UploadRefusedError(503, f"the upload could not be staged: {exc.strerror or exc}") from None
