"""An external Redis's password: in the URL, in PAKTUM_REDIS_PASSWORD, or in a file (a mounted Secret), folded
into the one URL every service connects with; and never printed whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.connection import parse_url

from paktum_common.errors import PaktumError
from paktum_common.redis_client import redacted
from paktum_common.settings import Settings

PASSWORD = "p@ss/w:rd %?#&="  # every character a URL treats specially


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"PAKTUM_{name.upper()}", raising=False)


def connection_of(settings: Settings) -> dict[str, object]:
    """What redis-py will connect with: the URL as the services hand it to `connect`."""
    assert settings.redis_url
    return {k: v for k, v in parse_url(settings.redis_url).items() if k != "connection_class"}


def test_a_password_variable_goes_into_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAKTUM_REDIS_URL", "rediss://redis.data.svc:6380/2")
    monkeypatch.setenv("PAKTUM_REDIS_PASSWORD", PASSWORD)
    assert connection_of(Settings()) == {"password": PASSWORD, "host": "redis.data.svc", "port": 6380, "db": 2}


def test_a_password_file_goes_into_the_url_without_its_newline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text(PASSWORD + "\n")
    monkeypatch.setenv("PAKTUM_REDIS_URL", "redis://paktum@redis:6379/0")  # an ACL user keeps its name
    monkeypatch.setenv("PAKTUM_REDIS_PASSWORD_FILE", str(secret))
    connection = connection_of(Settings())
    assert (connection["username"], connection["password"]) == ("paktum", PASSWORD)


def test_a_password_for_a_unix_socket_goes_into_the_query() -> None:
    settings = Settings(redis_url="unix:///run/redis.sock?db=3", redis_password=PASSWORD)
    assert connection_of(settings) == {"path": "/run/redis.sock", "db": 3, "password": PASSWORD}


def test_a_url_without_a_password_and_no_password_setting_is_left_alone() -> None:
    assert Settings(redis_url="redis://127.0.0.1:6379/0").redis_url == "redis://127.0.0.1:6379/0"
    assert Settings(redis_url="redis://:same@h/0", redis_password="same").redis_url == "redis://:same@h/0"
    assert Settings(redis_password="").redis_url is None, "an empty variable is unset"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"redis_url": "redis://:Qx1secret@h/0", "redis_password": "Qx2secret"}, "carries a password and"),
        ({"redis_url": "redis://h/0", "redis_password": "a", "redis_password_file": "/x"}, "not both"),
        ({"redis_url": "redis://h/0", "redis_password_file": "/nonexistent/pw"}, "cannot be read"),
    ],
    ids=["url-and-variable-disagree", "variable-and-file", "missing-file"],
)
def test_contradictions_and_missing_files_are_refused_without_printing_the_password(
    overrides: dict[str, str], reason: str
) -> None:
    with pytest.raises(PaktumError, match=reason) as refused:
        Settings(**overrides)  # type: ignore[arg-type]
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "is empty"), (b"\n", "is empty"), (b"x" * 5000, "over 4096 bytes"), (b"\xff", "UTF-8")],
)
def test_an_unusable_password_file_is_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    secret = tmp_path / "pw"
    secret.write_bytes(content)
    with pytest.raises(PaktumError, match=reason):
        Settings(redis_url="redis://h/0", redis_password_file=secret)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://paktum:s3cret@redis:6380/1", "rediss://paktum:***@redis:6380/1"),
        ("redis://:s3c@ret@h/0", "redis://:***@h/0"),
        ("unix:///run/redis.sock?db=1&password=s3cret", "unix:///run/redis.sock?db=1&password=***"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://paktum@h/0", "redis://paktum@h/0"),
    ],
    ids=["password", "user-and-password", "raw-at-sign", "unix-query", "none", "user-only"],
)
def test_a_url_in_a_log_line_hides_its_password(url: str, shown: str) -> None:
    assert redacted(url) == shown
