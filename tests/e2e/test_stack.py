"""The whole stack as processes: `paktum up`, `paktum import`, REST, Ctrl-C, and a hasher killed with SIGKILL."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
from pathlib import Path

import httpx
import redis

from paktum_cli.embedded_redis import EmbeddedRedis, free_port
from paktum_common.contracts import Post
from paktum_common.queue import IngestQueue
from paktum_common.redis_client import connect
from paktum_common.search.sqlite import SqliteSearch
from paktum_common.settings import Settings
from paktum_scraper.local import ImportReport, local_posts
from tests.e2e.conftest import Process, api_ready, command, paktum_env, wait_until
from tests.imagefiles import bad_images, good_images


def _search(base: str, query: str) -> dict:  # type: ignore[type-arg]
    return httpx.get(f"{base}/api/search", params={"query": query, "limit": 50}, timeout=10).json()


def test_up_import_search_stop_and_start_again(tmp_path: Path, processes: list[Process]) -> None:
    data, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    folder = tmp_path / "photos"
    good = good_images(folder, 10)
    bad = bad_images(folder / "broken")
    (folder / "picture-001.png.json").write_text('{"tags": ["cat_ears", "solo"], "rating": "q"}')
    (folder / "picture-002.gif.txt").write_bytes(b"\xff\xfe not utf-8")
    up_args = [command("paktum"), "--data-dir", str(data), "up", "--port", str(port), "--hashers", "2"]
    up = Process(up_args, paktum_env(), tmp_path / "up.log")
    processes.append(up)
    wait_until(lambda: api_ready(base), 60, "the api to be ready")

    imported = subprocess.run(
        [command("paktum"), "--data-dir", str(data), "import", str(folder), "--tags", "holiday 2024", "--wait"],
        env=paktum_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert f"found {len(good) + len(bad)} image files, published {len(good) + len(bad)}" in imported.stdout
    assert "1 unreadable_sidecar" in imported.stdout
    assert f"{len(bad)} posts rejected" in imported.stdout

    everything = _search(base, "holiday,2024")
    assert everything["total_hits"] == len(good) and everything["error"] == ""
    md5s = {hashlib.md5(p.read_bytes()).hexdigest() for p in good}
    assert {image["ID"] for image in everything["results"]} == md5s
    tagged = _search(base, "cat_ears solo")
    assert [(i["Filename"].endswith(".png"), i["Rating"]) for i in tagged["results"]] == [(True, "questionable")]
    for kind in ("notes.jpg", "truncated.jpg", "bomb.png"):
        assert kind in up.output()  # every rejection is logged with the file it came from

    up.ctrl_c()
    assert up.wait(60) == 0, up.output()
    # Redis must outlive the services: none of them may lose its connection while stopping.
    assert "Traceback" not in up.output(), up.output()
    assert "redis-server stopped" in up.output()
    assert not (data / "redis.url").exists()

    again = Process(up_args, paktum_env(), tmp_path / "up2.log")
    processes.append(again)
    wait_until(lambda: api_ready(base), 60, "the api to be ready again")
    assert _search(base, "holiday")["total_hits"] == len(good)  # index and Redis both kept their data
    again.signal(signal.SIGTERM)
    assert again.wait(60) == 0


def _publish(settings: Settings, folder: Path) -> int:
    async def go() -> int:
        client = connect(settings.redis_url or "")
        try:
            return await IngestQueue(client, settings).publish_posts(
                local_posts(folder, ["load"], None, ImportReport())
            )
        finally:
            await client.aclose()

    return asyncio.run(go())


def _indexed(settings: Settings) -> int:
    async def go() -> int:
        search = SqliteSearch(settings.effective_search_url.removeprefix("sqlite:///"))
        try:
            return await search.count()
        finally:
            await search.close()

    return asyncio.run(go())


def test_a_hasher_killed_mid_import_loses_no_image(tmp_path: Path, processes: list[Process]) -> None:
    with EmbeddedRedis(tmp_path / "redis") as server:
        data = tmp_path / "data"
        folder = tmp_path / "in"
        env = paktum_env(
            PAKTUM_REDIS_URL=server.url, PAKTUM_DATA_DIR=str(data), PAKTUM_HASHER_BATCH_SIZE="2",
            PAKTUM_CONSUMER_NAME="hasher-a", PAKTUM_RECLAIM_IDLE_MS="3000", PAKTUM_LOCAL_ROOTS=str(folder),
        )  # fmt: skip
        settings = Settings(data_dir=data, redis_url=server.url)
        good = good_images(folder, 24, size=(1600, 1200))
        bad = bad_images(folder / "broken")
        assert _publish(settings, folder) == len(good) + len(bad)

        first = Process([command("paktum-hasher")], env, tmp_path / "hasher-1.log")
        processes.append(first)
        wait_until(lambda: data.joinpath("search.sqlite3").exists() and _indexed(settings) >= 3, 90, "a few images")
        first.kill_group()  # SIGKILL, mid-import: no chance to finish or acknowledge anything
        done_before = _indexed(settings)
        assert done_before < len(good), "the hasher finished before it could be killed; the test proves nothing"
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert int(client.xpending(settings.stream, settings.consumer_group)["pending"]) > 0

        # A replacement with another name (a new pod): it takes over the dead hasher's entries once idle (3 s here,
        # PAKTUM_RECLAIM_IDLE_MS; a live hasher renews its claims well within that).
        second = Process(
            [command("paktum-hasher")], dict(env, PAKTUM_CONSUMER_NAME="hasher-b"), tmp_path / "hasher-2.log"
        )
        processes.append(second)
        wait_until(lambda: client.xlen(settings.stream) == 0, 180, "the stream to empty")
        second.signal(signal.SIGTERM)
        assert second.wait(60) == 0, second.output()

        assert _indexed(settings) == len(good)
        dead = client.xrange(settings.dead_letter_stream)
        assert sorted(Post.from_stream(f).source_id for _, f in dead) == sorted(
            str(p.relative_to(folder)) for p in bad.values()
        )
        stored = {p.name.partition(".")[0] for p in (data / "images").iterdir() if not p.name.startswith(".")}
        assert stored == {hashlib.md5(p.read_bytes()).hexdigest() for p in good}
        client.close()


def test_killing_paktum_up_leaves_no_orphans(tmp_path: Path, processes: list[Process]) -> None:
    data, port = tmp_path / "data", free_port()
    up = Process(
        [command("paktum"), "--data-dir", str(data), "up", "--port", str(port)], paktum_env(), tmp_path / "up.log"
    )
    processes.append(up)
    wait_until(lambda: api_ready(f"http://127.0.0.1:{port}"), 60, "the api to be ready")
    redis_url = (data / "redis.url").read_text().strip()
    os.kill(up.popen.pid, signal.SIGKILL)  # only `paktum up` itself: no chance to stop its children
    up.popen.wait(10)

    def all_gone() -> bool:
        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=0.5).ping()
            return False
        except redis.ConnectionError:
            return not api_ready(f"http://127.0.0.1:{port}")

    wait_until(all_gone, 30, "the api and redis-server to exit with their parent")
