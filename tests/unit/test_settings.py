"""Settings as the services read them from the environment: list formats, and PAKTUM_SCRAPE_SOURCES checked at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from paktum_common.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the variables a test sets: the machine's own PAKTUM_* must not leak in."""
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"PAKTUM_{name.upper()}", raising=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gore", ["gore"]),
        ("gore,guro", ["gore", "guro"]),
        ("gore, guro  blood", ["gore", "guro", "blood"]),
        ("gore\nguro\n\n", ["gore", "guro"]),
        ('["gore", "guro"]', ["gore", "guro"]),
        ("", []),
    ],
    ids=["one", "commas", "commas-and-spaces", "lines", "json-list", "empty"],
)
@pytest.mark.parametrize("variable", ["PAKTUM_BANNED_TAGS", "PAKTUM_CORS_ORIGINS", "PAKTUM_SCRAPE_SOURCE"])
def test_list_settings_read_separated_words_or_a_json_list(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(Settings(), variable.removeprefix("PAKTUM_").lower()) == expected


def test_list_defaults() -> None:
    settings = Settings()
    assert (settings.banned_tags, settings.cors_origins, settings.scrape_source) == ([], [], ["gelbooru"])


def test_cors_origins_keep_their_scheme_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAKTUM_CORS_ORIGINS", "https://gallery.example, http://localhost:5173")
    assert Settings().cors_origins == ["https://gallery.example", "http://localhost:5173"]


def test_scrape_sources_are_decoded_into_typed_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PAKTUM_SCRAPE_SOURCES",
        '{"gelbooru": {"user": 123456, "api_key": "s3cret"}, '
        '"rule34": {"api": "gelbooru", "url": "https://api.rule34.xxx", "rate": "0.5"}}',
    )
    settings = Settings()
    gelbooru, rule34 = settings.scrape_sources["gelbooru"], settings.scrape_sources["rule34"]
    assert gelbooru.user == "123456" and gelbooru.api_key is not None
    assert gelbooru.api_key.get_secret_value() == "s3cret" and "s3cret" not in repr(settings)
    assert (rule34.api, rule34.url, rule34.rate) == ("gelbooru", "https://api.rule34.xxx", 0.5)


@pytest.mark.parametrize("value", ["", "  ", "{}"], ids=["empty", "blank", "empty-object"])
def test_no_scrape_sources_means_the_built_in_sites_alone(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PAKTUM_SCRAPE_SOURCES", value)
    assert Settings().scrape_sources == {}


@pytest.mark.parametrize(
    ("value", "where", "why"),
    [
        ('{"gelbooru": {"apikey": "k"}}', "scrape_sources.gelbooru.apikey", "Extra inputs are not permitted"),
        ('{"gelbooru": {"rate": 0}}', "scrape_sources.gelbooru.rate", "greater than 0"),
        ('{"gelbooru": {"rate": "fast"}}', "scrape_sources.gelbooru.rate", "valid number"),
        ('{"x": {"api": "danbooru", "url": "ftp://x"}}', "scrape_sources.x.url", "should match pattern"),
        ('{"gelbooru": "https://gelbooru.com"}', "scrape_sources.gelbooru", "valid dictionary"),
        ('[{"name": "safebooru"}]', "scrape_sources", "valid dictionary"),
        ("{not json", "scrape_sources", "Expecting property name"),
    ],
    ids=["misspelt-field", "rate-zero", "rate-not-a-number", "url-not-http", "entry-not-an-object", "list", "json"],
)
def test_a_bad_scrape_sources_entry_is_refused_at_start_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, value: str, where: str, why: str
) -> None:
    monkeypatch.setenv("PAKTUM_SCRAPE_SOURCES", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    [error] = refused.value.errors()
    assert ".".join(str(part) for part in error["loc"]) == where
    assert why in error["msg"]


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAKTUM_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1 fd00::/8")
    assert Settings().trusted_proxies == ["10.0.0.0/8", "127.0.0.1", "fd00::/8"]
    monkeypatch.setenv("PAKTUM_TRUSTED_PROXIES", "10.0.0.0/8,proxy.example")
    with pytest.raises(ValidationError, match=r"'proxy\.example' is not an IP address or CIDR network"):
        Settings()
