"""Children of `paktum up`: their own session, and death with the parent."""

from __future__ import annotations

import ctypes
import os
import signal
from typing import Any


def supervised_child() -> None:
    """In a child, before exec: a session of its own, and SIGTERM when the parent dies, even by SIGKILL.

    Its own session: Ctrl-C at a terminal goes to the whole foreground process group, and Redis must
    not stop before the services that use it; the supervisor stops its children in order. Death with
    the parent (Linux only): a `paktum up` killed hard must not leave an orphaned api, hasher or Redis.
    """
    os.setsid()
    # Only C calls here: between fork and exec nothing may allocate or take a lock.
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1
_prctl: Any
try:  # looked up once in the parent
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: nothing to arrange
    _prctl = None
