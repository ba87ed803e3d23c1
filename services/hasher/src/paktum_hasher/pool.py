"""The decode processes: a pool forked from a server that has already imported the decoder.

A new decode process costs what it must import. Forked from a fork server that holds the decoder (Pillow,
numpy, imagehash and its DCT) and the program's main module, it starts in milliseconds instead of seconds,
so a pool that replaces a broken one is ready at once. This module imports nothing heavy: the pool's
initializer is pickled by reference to it.
"""

from __future__ import annotations

import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor

PRELOAD = ["__main__", "paktum_hasher.pool", "paktum_hasher.decode"]


def _ignore_interrupts() -> None:
    # Ctrl-C is the parent's to handle: a decode in flight finishes and its result is indexed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def new_decode_pool(workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # read when the fork server starts: the first pool's first process
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_ignore_interrupts)
