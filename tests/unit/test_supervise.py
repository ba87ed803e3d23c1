"""`paktum up`'s restart policy: a child that keeps exiting backs off, doubling up to a minute, and is
reported as crash-looping after five quick exits in a row."""

from __future__ import annotations

import pytest

from paktum_cli.up import Restarts, _how


def test_quick_exits_back_off_and_are_reported_as_a_crash_loop(capsys: pytest.CaptureFixture[str]) -> None:
    restarts = Restarts("hasher-1")
    for _ in range(8):
        restarts.exited("exited with code 1")
        restarts.started()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("; ", 1)[1] for line in lines[:4]] == [
        "restarting in 1s", "restarting in 2s", "restarting in 4s", "restarting in 8s",
    ]  # fmt: skip
    assert lines[4] == "paktum   | hasher-1 exited with code 1; crash-looping (5 quick exits in a row), next try in 16s"
    assert lines[7].endswith("crash-looping (8 quick exits in a row), next try in 60s")


def test_a_child_that_ran_a_while_starts_its_backoff_over(capsys: pytest.CaptureFixture[str]) -> None:
    restarts = Restarts("api")
    for _ in range(5):
        restarts.exited("exited with code 1")
    restarts.started_at -= 3600  # it then ran for an hour before the next exit
    restarts.exited("was killed by SIGKILL")
    assert capsys.readouterr().out.splitlines()[-1] == "paktum   | api was killed by SIGKILL; restarting in 1s"


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (1, "exited with code 1"),
        (0, "exited with code 0"),
        (-9, "was killed by SIGKILL"),
        (-200, "was killed by signal 200"),
    ],
    ids=["error", "clean", "sigkill", "unknown-signal"],
)
def test_how_a_child_ended_is_said_plainly(code: int, said: str) -> None:
    assert _how(code) == said
