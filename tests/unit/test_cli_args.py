"""`paktum`'s arguments: global options before the command, as before, and after it, as the README writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from paktum_cli.main import _parser


@pytest.mark.parametrize(
    "argv",
    [
        ["--data-dir", "D", "up"],
        ["up", "--data-dir", "D"],
        ["--data-dir", "elsewhere", "up", "--data-dir", "D"],
        ["import", "folder", "--data-dir", "D", "--wait"],
        ["cleanup", "--data-dir", "D"],
        ["scrape", "hug", "--data-dir", "D"],
        ["reindex", "--from", "a", "--to", "b", "--data-dir", "D"],
    ],
    ids=["before", "after", "after-wins", "import", "cleanup", "scrape", "reindex"],
)
def test_data_dir_is_accepted_before_and_after_the_command(argv: list[str]) -> None:
    assert _parser().parse_args(argv).data_dir == Path("D")


def test_no_data_dir_stays_unset() -> None:
    assert _parser().parse_args(["up"]).data_dir is None
