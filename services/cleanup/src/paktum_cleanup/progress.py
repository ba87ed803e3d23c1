"""A progress bar for the long steps of a cleanup run, drawn on a terminal and silent elsewhere."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
REDRAW_SECONDS = 0.2


class Progress:
    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        # In a CronJob's log a redrawn bar is noise: draw only on a terminal.
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = ""
        self.total = 0
        self.done = 0
        self._drawn = 0.0

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self._draw(force=True)

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._draw()

    def finish(self) -> None:
        if self.enabled and self.label:
            self.done = max(self.done, self.total)
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
        self.label = ""

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn < REDRAW_SECONDS):
            return
        self._drawn = now
        share = min(1.0, self.done / self.total) if self.total else 1.0
        bar = "#" * int(share * WIDTH)
        self.stream.write(f"\r{self.label:<14} [{bar:<{WIDTH}}] {self.done}/{self.total}")
        self.stream.flush()
