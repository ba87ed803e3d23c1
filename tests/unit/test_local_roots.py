"""The allowed folders for local posts: the setting's forms, the data directory's file, and what is ignored."""

import os
from pathlib import Path

import pytest

from paktum_common.local_roots import allow_root, allowed_roots, is_under
from paktum_common.settings import Settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('["/srv/my pictures", "/mnt/a,b"]', ["/srv/my pictures", "/mnt/a,b"]),
        ("/srv/a:/srv/b", ["/srv/a", "/srv/b"]),
        ("/srv/a\n/srv/with space\n", ["/srv/a", "/srv/with space"]),
        ("", []),
    ],
    ids=["json-list", "path-separator", "one-per-line", "empty"],
)
def test_the_setting_takes_a_list_of_folders(raw: str, expected: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAKTUM_LOCAL_ROOTS", raw)
    assert Settings().local_roots == [Path(p) for p in expected]


def test_import_records_a_folder_once_resolved_and_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    real = tmp_path / "pictures"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert allow_root(settings, tmp_path / "link") == real
    assert allow_root(settings, real / ".." / "pictures") == real
    assert settings.local_roots_file.read_text() == f"{real}\n"
    assert settings.local_roots_file.stat().st_mode & 0o777 == 0o600
    assert allowed_roots(settings) == [real]


def test_relative_and_writable_by_others_are_ignored(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, local_roots=[Path("relative/dir"), tmp_path / "set"])
    settings.local_roots_file.write_text(f"{tmp_path / 'recorded'}\n")
    os.chmod(settings.local_roots_file, 0o600)
    assert allowed_roots(settings) == [tmp_path / "set", tmp_path / "recorded"]
    os.chmod(settings.local_roots_file, 0o620)
    assert allowed_roots(settings) == [tmp_path / "set"]


@pytest.mark.parametrize(
    ("path", "inside"),
    [("/srv/pics", True), ("/srv/pics/a/b.jpg", True), ("/srv/pictures/a.jpg", False), ("/srv", False)],
)
def test_under_a_root_means_the_root_or_below_it(path: str, inside: bool) -> None:
    assert is_under(path, [Path("/srv/pics")]) is inside
