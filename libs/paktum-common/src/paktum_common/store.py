"""The image store: originals and thumbnails as files on disk, written atomically."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

from paktum_common.contracts import MEDIA_TYPES
from paktum_common.errors import StorageUnavailableError
from paktum_common.settings import Settings

_SAFE_NAME = re.compile(r"^[0-9a-f]{32}\.[a-z0-9]{1,5}$")
THUMBNAIL_EXT = "jpg"
SMALL = "small"  # the folder of the smaller thumbnails, inside the thumbnails folder
# Write errors that say the disk, not the file, is at fault: they pass once an operator frees space or
# fixes the volume, so the writer holds its work and retries instead of rejecting it.
OUTAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS})


class ImageStore:
    """Files named by the MD5 of their bytes: `images/<md5>.<ext>`, `thumbnails/<md5>.jpg`, and the smaller
    thumbnail `thumbnails/small/<md5>.jpg` (images stored before it existed have none)."""

    def __init__(self, images_dir: Path, thumbnails_dir: Path) -> None:
        self.images_dir = images_dir
        self.thumbnails_dir = thumbnails_dir
        images_dir.mkdir(parents=True, exist_ok=True)
        thumbnails_dir.mkdir(parents=True, exist_ok=True)
        (thumbnails_dir / SMALL).mkdir(exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageStore:
        return cls(settings.images_dir, settings.thumbnails_dir)

    @staticmethod
    def is_valid_name(filename: str) -> bool:
        """Only names the store itself makes: no path separators, no dot-dot, nothing hidden."""
        return bool(_SAFE_NAME.match(filename))

    @staticmethod
    def thumbnail_name(md5: str) -> str:
        return f"{md5}.{THUMBNAIL_EXT}"

    def image_path(self, filename: str) -> Path:
        return self.images_dir / filename

    def thumbnail_path(self, md5: str) -> Path:
        return self.thumbnails_dir / self.thumbnail_name(md5)

    def small_thumbnail_path(self, md5: str) -> Path:
        return self.thumbnails_dir / SMALL / self.thumbnail_name(md5)

    def write_image(self, filename: str, data: bytes) -> Path:
        return _write_atomically(self.image_path(filename), data)

    def write_thumbnail(self, md5: str, data: bytes) -> Path:
        return _write_atomically(self.thumbnail_path(md5), data)

    def write_small_thumbnail(self, md5: str, data: bytes) -> Path:
        return _write_atomically(self.small_thumbnail_path(md5), data)

    def touch(self, images: list[tuple[str, str]]) -> None:
        """Mark these images' files (md5, filename) as just written; a file already gone is left gone."""
        for md5, filename in images:
            for path in (self.image_path(filename), self.thumbnail_path(md5), self.small_thumbnail_path(md5)):
                with contextlib.suppress(FileNotFoundError):
                    os.utime(path)

    def has_image(self, filename: str) -> bool:
        return self.image_path(filename).is_file()

    def delete(self, md5: str, filename: str | None = None) -> None:
        """Remove an image's original and thumbnails. Without its filename (no document says it), every name
        the image could have: one unlink per media type, never a scan of a directory of a million files."""
        if not self.is_valid_name(self.thumbnail_name(md5)):
            return  # not a name this store makes: nothing of ours to remove
        names = [filename] if filename else [f"{md5}.{ext}" for ext in MEDIA_TYPES]
        for name in names:
            if self.is_valid_name(name):
                self.image_path(name).unlink(missing_ok=True)
        self.thumbnail_path(md5).unlink(missing_ok=True)
        self.small_thumbnail_path(md5).unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> Path:
    """Write to a temporary file beside `path`, then rename: a reader never sees half a file.

    A full disk (or an I/O error, a quota, a read-only volume) raises StorageUnavailableError, leaving
    no partial file behind."""
    try:
        return _write_file(path, data)
    except OSError as exc:
        if exc.errno in OUTAGE_ERRNOS:
            raise StorageUnavailableError(f"cannot store {path.name} in {path.parent}: {exc.strerror}") from exc
        raise


def _write_file(path: Path, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
