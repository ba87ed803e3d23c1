from pathlib import Path

import pytest

from paktum_common.banned import banned_in, load_banned_tags
from paktum_common.errors import PaktumError
from paktum_common.settings import Settings


def test_no_tags_are_banned_by_default(tmp_path: Path) -> None:
    assert load_banned_tags(Settings(data_dir=tmp_path)) == frozenset()


def test_setting_and_file_combine(tmp_path: Path) -> None:
    path = tmp_path / "banned.txt"
    path.write_text("# one per line\nGore\nlong hair, other  # trailing comment\n")
    banned = load_banned_tags(Settings(data_dir=tmp_path, banned_tags="a,b c", banned_tags_file=path))
    assert banned == {"a", "b", "c", "gore", "long", "hair", "other"}
    assert banned_in(["x", "gore", "a"], banned) == ["gore", "a"]


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PaktumError, match="PAKTUM_BANNED_TAGS_FILE"):
        load_banned_tags(Settings(data_dir=tmp_path, banned_tags_file=tmp_path / "missing.txt"))
