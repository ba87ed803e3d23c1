"""Chaos while importing: Redis killed (SIGKILL) and shut down (SHUTDOWN) at random moments and started again on
its port, hashers SIGKILLed at random moments and started again, while posts are being published.

Prints how many images were indexed, lost, doubled and dead-lettered, and how many services exited on their
own (the bar: every image indexed once, 0 lost, 0 dead letters, 0 exits). `make stress` runs it.

    .venv/bin/python bench/faults.py --images 200 --rounds 12 --seed 1
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paktum_common.settings import Settings
from tests.e2e.faults import ImageServer, RestartableRedis, corpus, publish, service_env, tally


class Hasher:
    def __init__(self, settings: Settings, name: str, log: Path) -> None:
        self.settings, self.name, self.log = settings, name, log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
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
        self.kills += 1
        self.start()

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--hashers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=12, help="faults injected")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the last image")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="paktum-faults-"))
    redis_server = RestartableRedis(work / "redis")
    files = ImageServer(work / "files")
    settings = Settings(data_dir=work / "data", redis_url=redis_server.url)
    images = corpus(work / "files", files.url, args.images)
    hashers = [Hasher(settings, f"chaos-{i}", work / f"hasher-{i}.log") for i in range(args.hashers)]
    for hasher in hashers:
        hasher.start()
    published = 0
    faults = {"redis SIGKILL": 0, "redis SHUTDOWN": 0, "hasher SIGKILL": 0}

    def publisher() -> None:
        nonlocal published
        while published < len(images.posts):
            try:
                publish(redis_server.client(), settings, images.posts[published : published + 5])
                published += 5
            except Exception:  # Redis is away: publish the same posts again once it is back
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        for _ in range(args.rounds):
            time.sleep(rng.uniform(0.5, 3.0))
            action = rng.choice(list(faults))
            faults[action] += 1
            if action == "hasher SIGKILL":
                rng.choice(hashers).kill()
                continue
            redis_server.kill() if action == "redis SIGKILL" else redis_server.shutdown()
            time.sleep(rng.uniform(0.2, 4.0))
            redis_server.start()
            for hasher in hashers:
                hasher.check()
        thread.join()
        deadline = time.monotonic() + args.timeout
        client = redis_server.client()
        while time.monotonic() < deadline:
            for hasher in hashers:
                hasher.check()
            seen = tally(settings, images.md5s, client)
            if seen.indexed + seen.dead >= len(images.md5s) and client.xlen(settings.stream) == 0:
                break
            time.sleep(1)
        seen = tally(settings, images.md5s, client)
        exits = sum(h.exits_on_their_own for h in hashers)
        print(f"faults: {', '.join(f'{n} {k}' for k, n in faults.items())} in {time.monotonic() - started:.0f}s")
        print(f"images: {len(images.md5s)} published, {seen.indexed} indexed, "
              f"{len(images.md5s) - seen.indexed - seen.dead} lost, {seen.files - seen.indexed} doubled files, "
              f"{seen.strays} temporary files left, {seen.dead} dead-lettered")  # fmt: skip
        print(f"hasher exits on their own: {exits}; logs in {work}")
        for _, fields in client.xrange(settings.dead_letter_stream, count=10):
            print(f"  dead letter: {fields.get('reason')}")
        ok = seen.indexed == len(images.md5s) and seen.dead == 0 and exits == 0 and seen.files == seen.indexed
        return 0 if ok else 1
    finally:
        for hasher in hashers:
            hasher.stop()
        files.stop()
        redis_server.stop()


if __name__ == "__main__":
    sys.exit(main())
