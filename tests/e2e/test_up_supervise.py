"""`paktum up` is a supervisor: a hasher killed hard, or the embedded Redis killed hard, is started again,
and the api serves throughout; every image published around the kills is indexed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import redis

from paktum_cli.embedded_redis import free_port
from paktum_common.settings import Settings
from tests.e2e.conftest import Process, api_ready, children_of, command, paktum_env, wait_until
from tests.faults import ImageServer, corpus, publish


def _child(parent: int, needle: str) -> int:
    """The oldest child whose command line contains `needle`."""
    return min(pid for pid, cmdline in children_of(parent).items() if needle in cmdline)


def _hits(base: str) -> int:
    answer = httpx.get(f"{base}/api/search", params={"query": "fault", "limit": 1}, timeout=10)
    return int(answer.json()["total_hits"]) if answer.status_code == 200 else -1


def test_a_killed_hasher_and_a_killed_redis_are_restarted_while_the_api_serves(
    tmp_path: Path, processes: list[Process]
) -> None:
    files = ImageServer(tmp_path / "files")
    try:
        images = corpus(tmp_path / "files", files.url, 12)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = paktum_env(PAKTUM_CLEANUP_INTERVAL="0", PAKTUM_DOWNLOAD_ALLOW_PRIVATE="true")
        data = tmp_path / "data"
        up = Process([command("paktum"), "--data-dir", str(data), "up", "--hashers", "2", "--port", str(port)],
                     env, tmp_path / "up.log")  # fmt: skip
        processes.append(up)
        wait_until(lambda: api_ready(base), 60, "the api to be ready")
        wait_until(lambda: up.output().count("hasher ready") == 2, 60, "both hashers")
        settings = Settings(data_dir=data, redis_url=(data / "redis.url").read_text().strip())
        client = redis.Redis.from_url(str(settings.redis_url), decode_responses=True)
        publish(client, settings, images.posts[:4])

        # The OOM killer's way: SIGKILL, no chance to clean up.
        os.kill(_child(up.popen.pid, "paktum_hasher.main"), signal.SIGKILL)
        wait_until(lambda: "was killed by SIGKILL; restarting in" in up.output(), 30, "the kill to be reported")
        wait_until(lambda: up.output().count("hasher ready") == 3, 60, "the hasher to be back")
        assert api_ready(base)

        os.kill(_child(up.popen.pid, "redis-server"), signal.SIGKILL)
        wait_until(lambda: "redis-server was killed by SIGKILL" in up.output(), 30, "the Redis kill to be reported")
        wait_until(lambda: "redis-server started again on" in up.output(), 60, "Redis to be restarted")
        wait_until(lambda: api_ready(base), 60, "the api to be ready again")
        client = redis.Redis.from_url(str(settings.redis_url), decode_responses=True)
        publish(client, settings, images.posts[4:])

        wait_until(lambda: _hits(base) == 12, 120, "every image to be searchable")
        out = up.output()
        assert up.popen.poll() is None
        # Only the hasher that was killed exited: the api, the other hasher and the scraper rode it out.
        assert out.count("was killed by") == 2 and "exited with code" not in out
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        assert client.xlen(settings.dead_letter_stream) == 0
        up.ctrl_c()  # and it still stops in order: the services, then the Redis it started again
        assert up.wait(90) == 0
        assert "redis-server stopped" in up.output() and "killing it" not in up.output()
    finally:
        files.stop()
