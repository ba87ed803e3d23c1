"""Dead letters keep their cause (each failed delivery's error) and `paktum dead-letters` lists and replays them."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from paktum_common.contracts import DeadLetter, Post
from paktum_common.queue import IngestQueue
from paktum_common.settings import Settings
from tests.integration.pipeline import open_pipeline


class _Unavailable(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def unavailable_site() -> Iterator[str]:
    """A file server on loopback that answers every download with HTTP 503."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def test_a_post_out_of_deliveries_is_dead_lettered_with_each_deliverys_error(
    settings: Settings, redis_client: Redis, unavailable_site: str
) -> None:
    settings = settings.model_copy(update={"max_deliveries": 2, "download_allow_private": True})
    post = Post(source="testbooru", source_id="77", file_url=f"{unavailable_site}/77.jpg")
    async with open_pipeline(settings, redis_client) as pipeline:
        await pipeline.queue.publish_posts([post])
        await pipeline.drain()

    [(_, fields)] = await redis_client.xrange(settings.dead_letter_stream)
    letter = DeadLetter.from_stream(fields)
    assert letter.reason.startswith("failed 2 deliveries; last error: TransientError: download answered HTTP 503")
    assert len(letter.errors) == 2 and all("HTTP 503" in error for error in letter.errors)
    assert Post.from_stream(letter.fields) == post  # the post as published, ready to replay
    assert await redis_client.hlen(pipeline.queue.errors_key) == 0  # the notes go with the entry


def _paktum(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAKTUM_")}
    env["PAKTUM_REDIS_URL"] = str(settings.redis_url)
    return subprocess.run(
        [sys.executable, "-m", "paktum_cli.main", "--data-dir", str(settings.data_dir), "dead-letters", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def _dead_letter_posts(queue: IngestQueue, reasons: list[str]) -> None:
    """Each reason a post of its own, dead-lettered the way a hasher does it (read, then dead_letter)."""
    await queue.ensure_group()
    await queue.publish_posts(
        Post(source="testbooru", source_id=str(i), file_url=f"https://files.example/{i}.jpg")
        for i in range(len(reasons))
    )
    deliveries = await queue.read(len(reasons))
    for delivery, reason in zip(deliveries, reasons, strict=True):
        assert await queue.dead_letter(delivery, reason)


async def test_dead_letters_are_listed_by_kind_of_reason_with_examples(
    settings: Settings, redis_client: Redis, tmp_path: Path
) -> None:
    queue = IngestQueue(redis_client, settings, consumer="lister")
    full = "failed 5 deliveries; last error: cannot store {}.jpg in /data/images: No space left on device"
    reasons = [full.format(f"{i:032x}") for i in range(4)] + ["not an image: cannot identify image file"]
    await _dead_letter_posts(queue, reasons)

    listed = _paktum(settings)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "paktum dead-letters: 5 dead letters, 2 kinds of reason"
    assert lines[1].split() == ["4", *full.replace("5", "N").format("<md5>").split()]
    assert sum("e.g. testbooru post" in line for line in lines) == 3 + 1  # three examples at most per reason
    assert "not an image" in listed.stdout


async def test_replay_by_reason_republishes_those_posts_and_keeps_the_rest(
    settings: Settings, redis_client: Redis
) -> None:
    queue = IngestQueue(redis_client, settings, consumer="replayer")
    await _dead_letter_posts(queue, ["index write failed: disk full", "not an image", "index write failed: x"])

    replayed = _paktum(settings, "--replay", "--reason", "INDEX WRITE")
    assert replayed.returncode == 0, replayed.stderr
    assert "2 posts published for indexing again; 1 dead letters left" in replayed.stdout
    again = [Post.from_stream(fields) for _, fields in await redis_client.xrange(settings.stream)]
    assert sorted(post.source_id for post in again) == ["0", "2"]
    [(_, left)] = await redis_client.xrange(settings.dead_letter_stream)
    assert DeadLetter.from_stream(left).reason == "not an image"

    everything = _paktum(settings, "--replay")
    assert "1 posts published for indexing again; 0 dead letters left" in everything.stdout
    assert await redis_client.xlen(settings.stream) == 3 and await redis_client.xlen(settings.dead_letter_stream) == 0
