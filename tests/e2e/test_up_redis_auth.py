"""`paktum up`'s Redis is locked: a client without the password is refused, while every child it starts and a
`paktum import` from another terminal get in; the password survives a restart and is never printed."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import httpx
import redis

from paktum_cli.embedded_redis import free_port
from tests.e2e.conftest import Process, api_ready, command, paktum_env, wait_until
from tests.imagefiles import good_images
from tests.rediswire import wire


def test_up_locks_its_redis_and_import_still_gets_in(tmp_path: Path, processes: list[Process]) -> None:
    data, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    folder = tmp_path / "photos"
    good = good_images(folder, 3)
    up_args = [command("paktum"), "--data-dir", str(data), "up", "--port", str(port), "--hashers", "1"]
    up = Process(up_args, paktum_env(PAKTUM_CLEANUP_INTERVAL="0"), tmp_path / "up.log")
    processes.append(up)
    wait_until(lambda: api_ready(base), 60, "the api to be ready")  # /readyz pings Redis: the api got in

    url_file = data / "redis.url"
    password = (data / "redis" / "password").read_text().strip()
    url = url_file.read_text().strip()
    assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "redis" / "password").stat().st_mode) == 0o600
    connection = redis.connection.parse_url(url)
    assert connection["password"] == password
    assert wire(int(connection["port"]), "PING").startswith(b"-NOAUTH")

    imported = subprocess.run(
        [command("paktum"), "--data-dir", str(data), "import", str(folder), "--tags", "locked", "--wait"],
        env=paktum_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    found = httpx.get(f"{base}/api/search", params={"query": "locked"}, timeout=10).json()
    assert found["total_hits"] == len(good), "the hasher indexed what the import published"

    up.ctrl_c()
    assert up.wait(60) == 0, up.output()
    again = Process(up_args, paktum_env(PAKTUM_CLEANUP_INTERVAL="0"), tmp_path / "up2.log")
    processes.append(again)
    wait_until(lambda: api_ready(base), 60, "the api to be ready again")
    assert (data / "redis" / "password").read_text().strip() == password
    assert redis.connection.parse_url(url_file.read_text().strip())["password"] == password
    again.ctrl_c()
    assert again.wait(60) == 0, again.output()
    for log in (up, again):
        assert password not in log.output(), "the password must never reach a log"
        assert "redis-server started on redis://:***@127.0.0.1:" in log.output()
