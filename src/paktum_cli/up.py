"""`paktum up`: Redis (embedded unless PAKTUM_REDIS_URL is set), the api, hashers, cleanup and scraper, as one command.

Each service runs as its own process, exactly as it would in Kubernetes; this module only starts
them, prefixes their logs, and stops them in order on Ctrl-C: services first (a hasher finishes and
acknowledges the batch in hand), Redis last (its append-only file is flushed on SHUTDOWN).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from paktum_cli.embedded_redis import EmbeddedRedis, forget_url, redis_password, remember_url
from paktum_cli.supervise import supervised_child
from paktum_common.redis_client import redacted
from paktum_common.settings import Settings

STOP_TIMEOUT = 30.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def _pump(name: str, stream: object, out: object, lock: threading.Lock) -> None:
    width = 9
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        line = raw.decode(errors="replace").rstrip("\n")
        with lock:
            print(f"{name:<{width}}| {line}", file=out, flush=True)  # type: ignore[call-overload]


def _spawn(name: str, module: str, env: dict[str, str], lock: threading.Lock, *args: str) -> Child:
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=supervised_child,
    )
    threading.Thread(target=_pump, args=(name, process.stdout, sys.stdout, lock), daemon=True).start()
    return Child(name, process)


def run_up(settings: Settings, hashers: int) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    redis: EmbeddedRedis | None = None
    env = dict(os.environ)
    # The children read the same settings from the environment, including what options overrode.
    env["PAKTUM_DATA_DIR"] = str(settings.data_dir.resolve())
    env["PAKTUM_API_HOST"] = settings.api_host
    env["PAKTUM_API_PORT"] = str(settings.api_port)
    if settings.redis_url:
        redis_url = settings.redis_url  # with PAKTUM_REDIS_PASSWORD(_FILE) already in it
    else:
        redis_dir = settings.data_dir / "redis"
        redis = EmbeddedRedis(redis_dir, password=redis_password(redis_dir)).start()
        redis_url = redis.url
        print(f"paktum   | redis-server started on {redacted(redis_url)} (data in {redis.data_dir})", flush=True)
    # The URL carries the password: a separate one in the environment could only contradict it.
    env.pop("PAKTUM_REDIS_PASSWORD", None)
    env.pop("PAKTUM_REDIS_PASSWORD_FILE", None)
    env["PAKTUM_REDIS_URL"] = redis_url
    remember_url(settings.data_dir, redis_url)  # so `paktum import` in another terminal finds it

    children: list[Child] = []
    stopping = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        children.append(_spawn("api", "paktum_api.main", env, lock))
        for index in range(1, hashers + 1):
            hasher_env = dict(env, PAKTUM_CONSUMER_NAME=f"{os.uname().nodename}-hasher-{index}")
            if settings.metrics_port:
                hasher_env["PAKTUM_METRICS_PORT"] = str(settings.metrics_port + index)
            children.append(_spawn(f"hasher-{index}", "paktum_hasher.main", hasher_env, lock))
        if settings.cleanup_interval:
            cleanup_env = dict(env)
            if settings.metrics_port:
                cleanup_env["PAKTUM_METRICS_PORT"] = str(settings.metrics_port + hashers + 1)
            every = str(settings.cleanup_interval)
            children.append(_spawn("cleanup", "paktum_cleanup.main", cleanup_env, lock, "--every", every))
        # The api's startScrape only queues a request: this child is what carries it out on one machine.
        scraper_env = dict(env, PAKTUM_CONSUMER_NAME=f"{os.uname().nodename}-scraper")
        if settings.metrics_port:
            scraper_env["PAKTUM_METRICS_PORT"] = str(settings.metrics_port + hashers + 2)
        children.append(_spawn("scraper", "paktum_scraper.main", scraper_env, lock, "--serve-requests"))
        base = settings.public_url or f"http://{settings.api_host}:{settings.api_port}"
        print(f"paktum   | Paktum is starting at {base}  (Ctrl-C stops it)", flush=True)
        exit_code = 0
        while not stopping.is_set():
            for child in children:
                code = child.process.poll()
                if code is not None:
                    print(f"paktum   | {child.name} exited with code {code}; stopping", flush=True)
                    exit_code = code or 1
                    stopping.set()
            stopping.wait(0.5)
        return exit_code
    finally:
        _stop_children(children)
        forget_url(settings.data_dir)
        if redis is not None:
            redis.stop()
            print("paktum   | redis-server stopped", flush=True)


def _stop_children(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"paktum   | {child.name} did not stop in {STOP_TIMEOUT:.0f}s; killing it", flush=True)
            child.process.kill()
            child.process.wait()
