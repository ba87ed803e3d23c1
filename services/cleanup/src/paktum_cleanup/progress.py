"""A progress bar for the long steps of a cleanup run, drawn on a terminal and silent elsewhere."""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar


class Progress:
    """One bar per step: `start` it with the step's size, `advance` it, `finish` it (the bar's last state stays)."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        # In a CronJob's log a redrawn bar is noise: draw only on a terminal.
        self.console = Console(file=stream or sys.stderr, force_terminal=enabled)
        self.enabled = self.console.is_terminal
        self._bar: Bar | None = None
        self._task = TaskID(0)

    def start(self, label: str, total: int) -> None:
        self.finish()
        if not self.enabled:
            return
        self._bar = Bar(
            TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.console,
        )  # fmt: skip
        self._task = self._bar.add_task(label, total=total)
        self._bar.start()

    def advance(self, count: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, count)

    def finish(self) -> None:
        if self._bar is not None:
            task = self._bar.tasks[0]
            self._bar.update(self._task, completed=max(task.completed, task.total or 0))
            self._bar.stop()
            self._bar = None
