"""The Meilisearch settings: the key is a secret with no default, and the index name is one Meilisearch accepts."""

import pytest
from pydantic import ValidationError

from paktum_common.settings import Settings


def test_the_key_is_unset_by_default_and_when_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAKTUM_MEILI_KEY", raising=False)
    assert Settings().meili_key is None
    monkeypatch.setenv("PAKTUM_MEILI_KEY", "")
    assert Settings().meili_key is None


def test_the_key_never_shows_in_a_dump_or_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAKTUM_MEILI_KEY", "hunter2-master-key")
    settings = Settings()
    assert settings.meili_key is not None and settings.meili_key.get_secret_value() == "hunter2-master-key"
    assert "hunter2" not in repr(settings) and "hunter2" not in settings.model_dump_json()


@pytest.mark.parametrize("name", ["images", "paktum_test_01", "a-b"])
def test_index_names_meilisearch_accepts(name: str) -> None:
    assert Settings(meili_index=name).meili_index == name


@pytest.mark.parametrize("name", ["", "with space", "slash/es", "dots.no"])
def test_index_names_meilisearch_refuses_are_refused_at_start(name: str) -> None:
    with pytest.raises(ValidationError):
        Settings(meili_index=name)
