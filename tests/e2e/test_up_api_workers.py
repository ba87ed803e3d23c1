"""`paktum up --api-workers N`: N api processes serve one port, and one that dies is restarted alone."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx

from paktum_cli.embedded_redis import free_port
from tests.e2e.conftest import Process, api_ready, children_of, command, paktum_env, wait_until


def api_workers(parent: int) -> list[int]:
    return sorted(pid for pid, cmdline in children_of(parent).items() if "paktum_api.main" in cmdline)


def listening_ports(pid: int) -> set[int]:
    """The TCP ports `pid` listens on, from its file descriptors and the kernel's socket tables."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def serving(base: str, times: int) -> bool:
    """Whether `times` fresh connections in a row are answered (each may reach any worker)."""
    for _ in range(times):
        with httpx.Client(base_url=base, timeout=5) as client:
            if client.get("/healthz").status_code != 200:
                return False
    return True


def test_the_api_workers_share_the_port_and_one_that_dies_is_restarted_alone(
    tmp_path: Path, processes: list[Process]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    up = Process(
        [command("paktum"), "--data-dir", str(tmp_path / "data"), "up", "--api-workers", "2", "--port", str(port)],
        paktum_env(PAKTUM_CLEANUP_INTERVAL="0"),
        tmp_path / "up.log",
    )
    processes.append(up)
    wait_until(lambda: api_ready(base), 60, "the api to be ready")

    def both_listen() -> bool:
        workers = api_workers(up.popen.pid)
        return len(workers) == 2 and all(port in listening_ports(pid) for pid in workers)

    wait_until(both_listen, 60, "two api processes listening on the port")
    first, second = api_workers(up.popen.pid)

    os.kill(first, signal.SIGKILL)
    wait_until(lambda: "api-1 was killed by SIGKILL" in up.output(), 30, "the supervisor to report it")
    assert first not in api_workers(up.popen.pid)
    assert serving(base, 20)  # the other one serves meanwhile

    wait_until(both_listen, 60, "the killed api process to be started again")
    assert second in api_workers(up.popen.pid) and first not in api_workers(up.popen.pid)
    assert "api-2 was killed" not in up.output() and "api-2 exited" not in up.output()
    assert serving(base, 20)


def test_api_workers_must_be_at_least_one(tmp_path: Path) -> None:
    done = subprocess.run(
        [command("paktum"), "--data-dir", str(tmp_path), "up", "--api-workers", "0"],
        env=paktum_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "--api-workers must be at least 1" in done.stderr
