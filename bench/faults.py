"""Chaos while importing: Redis killed (SIGKILL) and shut down (SHUTDOWN) at random moments and started again on
its port, hashers SIGKILLed at random moments and started again, while posts are being published.

Prints how many images were indexed, lost, doubled and dead-lettered, and how many services exited on their
own (the bar: every image indexed once, 0 lost, 0 dead letters, 0 exits). `make stress` runs it.

    .venv/bin/python bench/faults.py --images 200 --rounds 12 --seed 1          # the hashers run alone
    .venv/bin/python bench/faults.py --images 200 --rounds 12 --seed 1 --up     # under `paktum up`
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from paktum_cli.embedded_redis import free_port
from paktum_common.settings import Settings
from tests.faults import ImageServer, RestartableRedis, corpus, publish, service_env, tally


class Hasher:
    def __init__(self, settings: Settings, name: str, log: Path) -> None:
        self.settings, self.name, self.log = settings, name, log
        self.process: subprocess.Popen[bytes] | None = None
        self.exits_on_their_own = 0

    def start(self) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "paktum_hasher.main"], env=service_env(self.settings, self.name),
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.start()  # run alone, nothing restarts it: the operator (Kubernetes) would

    def check(self) -> None:
        """A hasher that exited without being killed is counted (and started again, to finish the run)."""
        if self.process is not None and self.process.poll() is not None:
            self.exits_on_their_own += 1
            self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Alone:
    """The hashers run alone (as on Kubernetes) against a Redis of the bench's own."""

    def __init__(self, work: Path, hashers: int) -> None:
        self.redis = RestartableRedis(work / "redis")
        self.settings = Settings(data_dir=work / "data", redis_url=self.redis.url)
        self.hashers = [Hasher(self.settings, f"chaos-{i}", work / f"hasher-{i}.log") for i in range(hashers)]
        for hasher in self.hashers:
            hasher.start()

    def client(self) -> redis.Redis:
        return self.redis.client()

    def kill_hasher(self, rng: random.Random) -> None:
        rng.choice(self.hashers).kill()

    def stop_redis(self, hard: bool, rng: random.Random) -> None:
        self.redis.kill() if hard else self.redis.shutdown()
        time.sleep(rng.uniform(0.2, 4.0))
        self.redis.start()

    def exits(self) -> int:
        for hasher in self.hashers:
            hasher.check()
        return sum(h.exits_on_their_own for h in self.hashers)

    def stop(self) -> None:
        for hasher in self.hashers:
            hasher.stop()
        self.redis.stop()


class Up:
    """`paktum up --hashers N`: it restarts what is killed, the embedded Redis included."""

    def __init__(self, work: Path, hashers: int) -> None:
        self.log = work / "up.log"
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAKTUM_")}
        env.update(PAKTUM_CLEANUP_INTERVAL="0", PAKTUM_DOWNLOAD_ALLOW_PRIVATE="true", PAKTUM_RECLAIM_IDLE_MS="2000",
                   PAKTUM_HASHER_WORKERS="1")  # fmt: skip
        data = work / "data"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "paktum_cli.main", "--data-dir", str(data), "up", "--hashers", str(hashers),
             "--port", str(self.port)],
            env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not (data / "redis.url").is_file() or self.log.read_text().count("hasher ready") < hashers:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"paktum up did not start: see {self.log}")
            time.sleep(0.2)
        self.settings = Settings(data_dir=data, redis_url=(data / "redis.url").read_text().strip())
        self.killed = 0

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(str(self.settings.redis_url), decode_responses=True)

    def _child(self, needle: str, rng: random.Random) -> int | None:
        pids = []
        for entry in Path("/proc").iterdir():
            try:
                if not entry.name.isdigit() or int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != (
                    self.process.pid
                ):
                    continue
                if needle in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
        return rng.choice(pids) if pids else None

    def _kill(self, needle: str, rng: random.Random) -> None:
        pid = self._child(needle, rng)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            self.killed += 1

    def kill_hasher(self, rng: random.Random) -> None:
        self._kill("paktum_hasher.main", rng)

    def stop_redis(self, hard: bool, rng: random.Random) -> None:
        if hard:
            self._kill("redis-server", rng)
            return
        with contextlib.suppress(redis.RedisError):
            self.client().shutdown()

    def exits(self) -> int:
        """Children that ended without being killed here (a SHUTDOWN's Redis exit is not a service's)."""
        ended = re.findall(r"^paktum   \| (\S+) (?:was killed by|exited with code)", self.log.read_text(), re.M)
        services = [name for name in ended if name != "redis-server"]
        hard = self.log.read_text().count("redis-server was killed by")
        return max(len(services) + hard - self.killed, 0) + (self.process.poll() is not None)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--hashers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=12, help="faults injected")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--up", action="store_true", help="under `paktum up` (else the hashers run alone)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the last image")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="paktum-faults-"))
    files = ImageServer(work / "files")
    images = corpus(work / "files", files.url, args.images)
    target: Alone | Up = Up(work, args.hashers) if args.up else Alone(work, args.hashers)
    settings = target.settings
    published = 0
    faults = {"redis SIGKILL": 0, "redis SHUTDOWN": 0, "hasher SIGKILL": 0}

    def publisher() -> None:
        nonlocal published
        while published < len(images.posts):
            try:
                publish(target.client(), settings, images.posts[published : published + 5])
                published += 5
            except redis.RedisError:  # Redis is away: publish the same posts again once it is back
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    started = time.monotonic()
    ok = False
    try:
        for _ in range(args.rounds):
            time.sleep(rng.uniform(0.5, 3.0))
            action = rng.choice(list(faults))
            faults[action] += 1
            if action == "hasher SIGKILL":
                target.kill_hasher(rng)
            else:
                target.stop_redis(action == "redis SIGKILL", rng)
        thread.join()
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                seen = tally(settings, images.md5s, target.client())
                if seen.indexed + seen.dead >= len(images.md5s) and target.client().xlen(settings.stream) == 0:
                    break
            time.sleep(1)
        client = target.client()
        seen = tally(settings, images.md5s, client)
        exits = target.exits()
        where = "under paktum up" if args.up else "services alone"
        print(f"faults ({where}): {', '.join(f'{n} {k}' for k, n in faults.items())} "
              f"in {time.monotonic() - started:.0f}s")  # fmt: skip
        print(f"images: {len(images.md5s)} published, {seen.indexed} indexed, "
              f"{len(images.md5s) - seen.indexed - seen.dead} lost, {seen.files - seen.indexed} doubled files, "
              f"{seen.strays} temporary files left, {seen.dead} dead-lettered")  # fmt: skip
        print(f"service exits not caused by the bench: {exits}")
        for _, fields in client.xrange(settings.dead_letter_stream, count=10):
            print(f"  dead letter: {fields.get('reason')}")
        ok = seen.indexed == len(images.md5s) and seen.dead == 0 and exits == 0 and seen.files == seen.indexed
        return 0 if ok else 1
    finally:
        target.stop()
        files.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs and data kept in {work}")


if __name__ == "__main__":
    sys.exit(main())
