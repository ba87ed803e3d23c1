"""What the fault tests share: a Redis of their own to kill and restart, image files served on loopback,
posts for them, and the count of what became of each image (indexed, stored, dead-lettered)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import http.server
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import redis

from paktum_cli.embedded_redis import EmbeddedRedis
from paktum_common.contracts import Post, Rating
from paktum_common.search import open_search
from paktum_common.settings import Settings
from tests.imagefiles import good_images


class RestartableRedis:
    """A redis-server of the test's own (append-only file on), killed and started again on the same port."""

    def __init__(self, data_dir: Path) -> None:
        self.server = EmbeddedRedis(data_dir).start()

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything beyond what it already wrote."""
        assert self.server.process is not None
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait(10)

    def shutdown(self) -> None:
        """A graceful SHUTDOWN (the append-only file is flushed)."""
        self.server.stop()

    def wipe(self) -> None:
        """Forget every key, as a Redis without persistence does when it restarts."""
        for path in sorted(self.server.data_dir.rglob("*"), reverse=True):
            if path.is_file():
                path.unlink()

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


class ImageServer:
    """The image files of a folder over HTTP on loopback, as a booru's file server would serve them."""

    def __init__(self, folder: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class Corpus:
    posts: list[Post]
    md5s: list[str]


def corpus(folder: Path, server_url: str, count: int) -> Corpus:
    """`count` distinct real pictures and a post for each, downloaded from `server_url`."""
    paths = good_images(folder, count, size=(320, 240))
    posts = [
        Post(source="faults", source_id=str(i), file_url=f"{server_url}/{path.name}", tags=["fault", f"n{i}"],
             rating=Rating.general)
        for i, path in enumerate(paths)
    ]  # fmt: skip
    return Corpus(posts, [hashlib.md5(path.read_bytes()).hexdigest() for path in paths])


def publish(client: redis.Redis, settings: Settings, posts: list[Post]) -> None:
    for post in posts:
        client.xadd(settings.stream, post.to_stream())  # type: ignore[arg-type]


@dataclass(frozen=True)
class Tally:
    indexed: int  # of the corpus, in the index
    files: int  # originals in the images folder (one per image: the name is the md5)
    strays: int  # temporary files left behind
    dead: int  # dead letters


def tally(settings: Settings, md5s: list[str], client: redis.Redis | None = None) -> Tally:
    async def indexed() -> int:
        search = open_search(settings)
        try:
            return len(await search.get_documents(md5s))
        finally:
            await search.close()

    images = list(settings.images_dir.iterdir()) if settings.images_dir.is_dir() else []
    return Tally(
        indexed=asyncio.run(indexed()),
        files=sum(1 for p in images if not p.name.startswith(".")),
        strays=sum(1 for p in images if p.name.startswith(".tmp-")),
        dead=int(client.xlen(settings.dead_letter_stream)) if client is not None else 0,
    )


def service_env(settings: Settings, consumer: str, **extra: str) -> dict[str, str]:
    """The environment a service run alone gets: these settings, quick reclaim, loopback downloads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAKTUM_")}
    env.update(
        PAKTUM_DATA_DIR=str(settings.data_dir),
        PAKTUM_REDIS_URL=str(settings.redis_url),
        PAKTUM_CONSUMER_NAME=consumer,
        PAKTUM_RECLAIM_IDLE_MS="1000",
        PAKTUM_READ_BLOCK_MS="200",
        PAKTUM_HASHER_WORKERS="1",
        PAKTUM_HASHER_BATCH_SIZE="4",
        PAKTUM_DOWNLOAD_ALLOW_PRIVATE="true",
    )
    env.update(extra)
    return env


def lines_with(text: str, needle: str) -> int:
    return sum(needle in line for line in text.splitlines())
