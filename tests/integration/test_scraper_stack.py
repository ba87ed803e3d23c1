"""`printf "hug\n" | paktum scrape` against a Gelbooru-format server, with Paktum running as `paktum up`
runs it (Redis, api, hasher as processes): the index fills, and a second run publishes nothing new."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from paktum_cli.embedded_redis import free_port
from tests.fixtures.booru.server import FixtureBooru, fixture_posts

BIN = Path(sys.executable).parent


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`paktum up` in its own session; yields the api's address and the environment for `paktum scrape`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAKTUM_")}
    env.update(
        PAKTUM_DATA_DIR=str(tmp_path / "data"),
        PAKTUM_API_PORT=str(port),
        PAKTUM_HASHER_WORKERS="1",
        PAKTUM_READ_BLOCK_MS="200",
        PAKTUM_DOWNLOAD_ALLOW_PRIVATE="true",  # the fixture booru is on loopback
    )
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen([BIN / "paktum", "up"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _ready(base), 60, "the api to be ready")
        yield base, env
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(10)
        log.close()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def _hits(base: str, query: str) -> int:
    return int(httpx.get(f"{base}/api/search", params={"query": query, "limit": 1}, timeout=5).json()["total_hits"])


def test_printf_hug_into_paktum_scrape_fills_the_index_and_a_rerun_publishes_nothing(
    booru: FixtureBooru, stack: tuple[str, dict[str, str]]
) -> None:
    base, env = stack
    booru.add(*fixture_posts(1, 24, ["hug", "1girl"], "general"), *fixture_posts(100, 3, ["cat"], "general"))
    env = dict(env, PAKTUM_SCRAPE_SOURCES=json.dumps({"gelbooru": {"url": booru.url, "rate": 20}}))
    run = subprocess.run([BIN / "paktum", "scrape"], input="hug\n", env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "total: found 24, published 24, skipped 0, errors 0" in run.stdout
    _wait(lambda: _hits(base, "hug") == 24, 60, "24 hug images in the index")
    assert _hits(base, "cat") == 0

    again = subprocess.run(
        [BIN / "paktum", "scrape"], input="hug\n", env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stderr
    assert "total: found 0, published 0" in again.stdout
