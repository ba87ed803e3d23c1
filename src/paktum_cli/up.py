"""`paktum up`: Redis (embedded unless PAKTUM_REDIS_URL is set), the api, hashers, cleanup and scraper, as one command.

Each service runs as its own process, exactly as it would in Kubernetes; this module starts them,
prefixes their logs, supervises them, and stops them in order on Ctrl-C: services first (a hasher
finishes and acknowledges the batch in hand), Redis last (its append-only file is flushed on SHUTDOWN).

Supervision: a child that exits (crash, SIGKILL, the OOM killer) is reported and started again after a
backoff (1 s, doubling up to a minute, reset once it has run for a minute); after several quick exits in
a row it is reported as crash-looping, and still retried, while the rest keep serving. The embedded Redis
is restarted the same way, on the same port and data directory; the services ride out its absence.

The api runs as `api_workers` processes on one port (SO_REUSEPORT: the kernel spreads connections over them),
each a child of its own, so one that dies is restarted alone while the others keep serving. Each keeps its
own search state (the SQLite file is shared, its caches are not).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from paktum_cli.embedded_redis import EmbeddedRedis, forget_url, redis_password, remember_url
from paktum_cli.supervise import supervised_child
from paktum_common.errors import PaktumError
from paktum_common.redis_client import redacted
from paktum_common.settings import Settings

STOP_TIMEOUT = 30.0
RESTART_FIRST, RESTART_MAX = 1.0, 60.0  # backoff between restarts of one child
STABLE_AFTER = 60.0  # a child that ran this long had no crash loop: its backoff starts over
CRASH_LOOP_AFTER = 5  # quick exits in a row that make a crash loop
REDIS_START_TIMEOUT = 300.0  # a restarted Redis first loads its append-only file: give a large one time


@dataclass
class Restarts:
    """One supervised thing's restart state: quick exits in a row, and when it may start again."""

    name: str
    failures: int = 0
    started_at: float = field(default_factory=time.monotonic)
    next_start: float | None = None

    def exited(self, how: str) -> None:
        now = time.monotonic()
        if now - self.started_at >= STABLE_AFTER:
            self.failures = 0
        self.failures += 1
        delay = min(RESTART_FIRST * 2 ** (self.failures - 1), RESTART_MAX)
        self.next_start = now + delay
        if self.failures >= CRASH_LOOP_AFTER:
            _say(f"{self.name} {how}; crash-looping ({self.failures} quick exits in a row), next try in {delay:.0f}s")
        else:
            _say(f"{self.name} {how}; restarting in {delay:.0f}s")

    def due(self) -> bool:
        return self.next_start is not None and time.monotonic() >= self.next_start

    def started(self) -> None:
        self.started_at = time.monotonic()
        self.next_start = None


@dataclass
class Child:
    name: str
    module: str
    env: dict[str, str]
    args: tuple[str, ...]
    lock: threading.Lock
    process: subprocess.Popen[bytes] | None = None
    restarts: Restarts = field(init=False)

    def __post_init__(self) -> None:
        self.restarts = Restarts(self.name)

    def start(self) -> Child:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=supervised_child,
        )
        threading.Thread(
            target=_pump, args=(self.name, self.process.stdout, sys.stdout, self.lock), daemon=True
        ).start()
        self.restarts.started()
        return self

    def supervise(self) -> None:
        """Report an exit and schedule a restart; start again once the backoff is over."""
        if self.process is not None:
            code = self.process.poll()
            if code is None:
                return
            self.process = None
            self.restarts.exited(_how(code))
        if self.restarts.due():
            _say(f"{self.name} restarting (attempt {self.restarts.failures})")
            self.start()


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _say(message: str) -> None:
    print(f"paktum   | {message}", flush=True)


def _pump(name: str, stream: object, out: object, lock: threading.Lock) -> None:
    width = 9
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        line = raw.decode(errors="replace").rstrip("\n")
        with lock:
            print(f"{name:<{width}}| {line}", file=out, flush=True)  # type: ignore[call-overload]


class SupervisedRedis:
    """The embedded redis-server, started again on the same port and data directory when it dies."""

    def __init__(self, server: EmbeddedRedis) -> None:
        self.server = server
        self.restarts = Restarts("redis-server")
        self.running = True

    def supervise(self) -> None:
        if self.running:
            process = self.server.process
            code = process.poll() if process is not None else 1
            if code is None:
                return
            self.running = False
            self.restarts.exited(_how(code))
        if self.restarts.due():
            try:
                self.server.start(timeout=REDIS_START_TIMEOUT)
            except PaktumError as exc:
                self.running = False
                self.restarts.exited(f"did not start again ({exc})")
                return
            self.running = True
            self.restarts.started()
            _say(f"redis-server started again on {self.server.url}")


def api_children(env: dict[str, str], workers: int, lock: threading.Lock) -> list[Child]:
    """One api child, or `workers` sharing the port: `api-1`, `api-2`, ... each supervised on its own."""
    if workers == 1:  # the port is not shared: nothing else can bind it meanwhile
        return [Child("api", "paktum_api.main", env, (), lock)]
    return [Child(f"api-{n}", "paktum_api.main", env, ("--reuse-port",), lock) for n in range(1, workers + 1)]


def run_up(settings: Settings, hashers: int, api_workers: int = 1) -> int:
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
    supervised_redis = SupervisedRedis(redis) if redis is not None else None

    def request_stop(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        children.extend(child.start() for child in api_children(env, api_workers, lock))
        for index in range(1, hashers + 1):
            hasher_env = dict(env, PAKTUM_CONSUMER_NAME=f"{os.uname().nodename}-hasher-{index}")
            if settings.metrics_port:
                hasher_env["PAKTUM_METRICS_PORT"] = str(settings.metrics_port + index)
            children.append(Child(f"hasher-{index}", "paktum_hasher.main", hasher_env, (), lock).start())
        if settings.cleanup_interval:
            cleanup_env = dict(env)
            if settings.metrics_port:
                cleanup_env["PAKTUM_METRICS_PORT"] = str(settings.metrics_port + hashers + 1)
            every = str(settings.cleanup_interval)
            children.append(Child("cleanup", "paktum_cleanup.main", cleanup_env, ("--every", every), lock).start())
        # The api's startScrape only queues a request: this child is what carries it out on one machine.
        scraper_env = dict(env, PAKTUM_CONSUMER_NAME=f"{os.uname().nodename}-scraper")
        if settings.metrics_port:
            scraper_env["PAKTUM_METRICS_PORT"] = str(settings.metrics_port + hashers + 2)
        children.append(Child("scraper", "paktum_scraper.main", scraper_env, ("--serve-requests",), lock).start())
        base = settings.public_url or f"http://{settings.api_host}:{settings.api_port}"
        print(f"paktum   | Paktum is starting at {base}  (Ctrl-C stops it)", flush=True)
        while not stopping.is_set():
            if supervised_redis is not None:
                supervised_redis.supervise()
            for child in children:
                child.supervise()
            stopping.wait(0.5)
        return 0
    finally:
        _stop_children(children)
        forget_url(settings.data_dir)
        if redis is not None:
            redis.stop()
            print("paktum   | redis-server stopped", flush=True)


def _stop_children(children: list[Child]) -> None:
    running = [(child.name, child.process) for child in children if child.process is not None]
    for _, process in running:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _say(f"{name} did not stop in {STOP_TIMEOUT:.0f}s; killing it")
            process.kill()
            process.wait()
