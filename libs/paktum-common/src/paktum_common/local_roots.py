"""The folders whose files a post may name with a file:// URL: what the operator allowed, never what a post says.

A post on the stream can come from anything that reaches Redis, so the stream cannot grant access to the
disk. Two places can, both the operator's: the setting PAKTUM_LOCAL_ROOTS (for hashers run alone), and the
file `<data_dir>/local-roots`, where `paktum import DIR` records DIR before it publishes (so an import
works against a running `paktum up`, whose hashers share the data directory). Anyone who can write into
the data directory owns the images already; the file is still ignored when group or others may write it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from paktum_common.log import log_event
from paktum_common.settings import Settings

log = logging.getLogger("paktum.local_roots")

MAX_ROOTS_FILE_BYTES = 1024 * 1024


def allowed_roots(settings: Settings) -> list[Path]:
    """Every allowed folder, resolved (symlinks and `..` gone), in the order given."""
    roots = [*settings.local_roots, *_recorded(settings.local_roots_file)]
    resolved: dict[Path, None] = {}
    for root in roots:
        if root.is_absolute():
            resolved[Path(os.path.realpath(root))] = None
    return list(resolved)


def allow_root(settings: Settings, folder: Path) -> Path:
    """Record `folder` (resolved) in the data directory's local-roots file; return the resolved folder."""
    real = Path(os.path.realpath(folder))
    path = settings.local_roots_file
    if real in _recorded(path):
        return real
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        handle.write(f"{real}\n")
    return real


def is_under(path: str, roots: list[Path]) -> bool:
    """Whether the resolved `path` is one of `roots` or inside one."""
    candidate = Path(path)
    return any(candidate == root or candidate.is_relative_to(root) for root in roots)


def _recorded(path: Path) -> list[Path]:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    except OSError as exc:
        log_event(log, logging.WARNING, "local-roots file ignored", path=str(path), reason=str(exc))
        return []
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            log_event(
                log, logging.WARNING, "local-roots file ignored: not a regular file, or others may write it",
                path=str(path),
            )  # fmt: skip
            return []
        text = handle.read(MAX_ROOTS_FILE_BYTES).decode("utf-8", errors="replace")
    return [Path(line.strip()) for line in text.splitlines() if line.strip()]
