"""The cleanup run's progress bar: drawn on a terminal, nothing at all in a CronJob's log."""

from __future__ import annotations

import io
import re

import pytest

from paktum_cleanup.progress import Progress


def run_steps(progress: Progress) -> None:
    progress.start("scan index", 3)
    progress.advance(2)
    progress.advance()
    progress.finish()
    progress.start("write groups", 10)
    progress.advance(4)
    progress.finish()  # a step that ends early (a failure) still closes its line


def test_on_a_terminal_each_step_leaves_a_line_with_its_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    out = io.StringIO()
    run_steps(Progress(out, enabled=True))
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    scan, groups, end = (line.rsplit("\r", 1)[-1] for line in plain.split("\n"))
    assert scan.startswith("scan index ") and " 3/3 " in scan
    assert groups.startswith("write groups ") and " 10/10 " in groups
    assert end == ""


def test_off_a_terminal_nothing_is_written() -> None:
    out = io.StringIO()  # not a terminal, as a CronJob's stderr
    progress = Progress(out)
    assert not progress.enabled
    run_steps(progress)
    assert out.getvalue() == ""
