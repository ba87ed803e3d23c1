"""The embedded redis-server as `paktum up` starts it: a password of its own, kept owner-only and reused, no
commands that write files or load code, and loopback only. Probed on the wire, as an attacker on the host would."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from paktum_cli.embedded_redis import (
    DISABLED_COMMANDS,
    EmbeddedRedis,
    discover_url,
    redis_password,
    remember_url,
    write_private,
)
from paktum_common.errors import PaktumError
from tests.rediswire import wire


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def world_umask() -> Iterator[None]:
    """umask 0: whatever mode a file is created with is the mode it has; nothing narrows it by accident."""
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    directory = tmp_path_factory.mktemp("locked") / "redis"
    with EmbeddedRedis(directory, password=redis_password(directory)) as server:
        yield server


def test_the_password_is_owner_only_from_the_start_and_reused(tmp_path: Path, world_umask: None) -> None:
    directory = tmp_path / "redis"
    password = redis_password(directory)
    assert len(password) >= 32
    assert mode(directory / "password") == 0o600
    assert mode(directory) == 0o700
    assert redis_password(directory) == password, "a second start must keep the first start's password"
    assert redis_password(tmp_path / "other") != password
    older = tmp_path / "older"
    older.mkdir(mode=0o755)  # a data directory from before Redis had a password
    redis_password(older)
    assert mode(older) == 0o700


def test_a_widened_password_file_is_narrowed_and_a_foreign_one_refused(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    password = redis_password(directory)
    (directory / "password").chmod(0o644)
    assert redis_password(directory) == password
    assert mode(directory / "password") == 0o600
    (directory / "password").write_text("short\n")
    with pytest.raises(PaktumError, match="does not hold a password Paktum made"):
        redis_password(directory)


def test_a_private_file_keeps_the_first_writer_when_asked(tmp_path: Path, world_umask: None) -> None:
    path = tmp_path / "secret"
    assert write_private(path, "first", keep_existing=True) is True
    assert write_private(path, "second", keep_existing=True) is False
    assert path.read_text() == "first"
    assert write_private(path, "third") is True
    assert (path.read_text(), mode(path)) == ("third", 0o600)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"], "no temporary file is left behind"


def test_the_remembered_url_is_owner_only(tmp_path: Path, world_umask: None) -> None:
    (tmp_path / "redis.url").write_text("redis://old/0\n")
    (tmp_path / "redis.url").chmod(0o644)  # left by an older Paktum
    remember_url(tmp_path, "redis://:pw-pw-pw@127.0.0.1:1234/0")
    assert mode(tmp_path / "redis.url") == 0o600
    assert discover_url(tmp_path) == "redis://:pw-pw-pw@127.0.0.1:1234/0"


def test_a_client_without_the_password_is_refused(locked: EmbeddedRedis) -> None:
    assert wire(locked.port, "PING").startswith(b"-NOAUTH Authentication required")
    assert wire(locked.port, "SET paktum:ingest x").startswith(b"-NOAUTH")
    assert wire(locked.port, "AUTH wrong-password").startswith(b"-WRONGPASS")
    assert wire(locked.port, f"AUTH {locked.password}", "PING") == b"+OK\r\n+PONG\r\n"
    client = redis.Redis.from_url(locked.url)
    assert client.ping()
    client.close()


@pytest.mark.parametrize(
    "command", ["CONFIG GET dir", "DEBUG SLEEP 0", "MODULE LIST", "REPLICAOF NO ONE", "SLAVEOF NO ONE"]
)
def test_commands_that_reach_the_host_do_not_exist(locked: EmbeddedRedis, command: str) -> None:
    answer = wire(locked.port, f"AUTH {locked.password}", command)
    assert answer.startswith(b"+OK\r\n-ERR unknown command"), answer
    assert command.split()[0] in DISABLED_COMMANDS


def test_the_password_is_not_on_the_command_line_and_only_loopback_listens(locked: EmbeddedRedis) -> None:
    assert locked.process is not None and locked.password
    cmdline = Path(f"/proc/{locked.process.pid}/cmdline").read_bytes()
    assert locked.password.encode() not in cmdline
    assert mode(locked.data_dir / "redis.conf") == 0o600
    port = f"{locked.port:04X}"
    listening = [
        line.split()[1]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for line in Path(table).read_text().splitlines()[1:]
        if line.split()[1].endswith(f":{port}") and line.split()[3] == "0A"  # 0A: LISTEN
    ]
    assert listening == [f"0100007F:{port}"], listening


def test_data_written_with_the_password_is_there_after_a_restart(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    with EmbeddedRedis(directory, password=redis_password(directory)) as server:
        client = redis.Redis.from_url(server.url)
        client.set("paktum:probe", "kept")
        client.close()
    with EmbeddedRedis(directory, password=redis_password(directory)) as server:
        client = redis.Redis.from_url(server.url)
        assert client.get("paktum:probe") == b"kept"
        client.close()
