"""Hostile-request benchmark: how long the api takes to refuse each bomb, and how much the bombs delay /healthz.

Run with `make bench-api-hostile` (or `.venv/bin/python bench/api_hostile.py --seconds 5 --clients 4`). It starts a real
`paktum-api` process on loopback (its own embedded Redis, an empty index: every bomb is refused before anything
is looked up), then for each bomb: the time one refusal takes, and /healthz latency while `--clients` clients
send that bomb back to back, as a ratio to /healthz on the idle api (the peer). The bar: 100 ms added.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from paktum_cli.embedded_redis import EmbeddedRedis, free_port


def fragment_bomb(levels: int = 30) -> str:
    chain = " ".join(f"fragment F{n} on Image {{ ...F{n + 1} ...F{n + 1} }}" for n in range(levels))
    return "{ randomImage { ...F0 } } " + chain + f" fragment F{levels} on Image {{ ID }}"


BOMBS: dict[str, dict[str, object]] = {
    "fragment spreads (<1 KB, 2^30)": {"query": fragment_bomb()},
    "100,000 aliases": {"query": "{ " + " ".join(f"a{n}: __typename" for n in range(100_000)) + " }"},
    "10,000 copies of a field": {"query": "{" + " __typename" * 10_000 + " }"},
    "5,000 operations": {
        "query": " ".join(f"query q{n} {{ __typename }}" for n in range(5_000)),
        "operationName": "q1",
    },
    "10,000 directives": {"query": "{ __typename" + " @skip(if: false)" * 10_000 + " }"},
    "1,900 tokens of repeats": {"query": "{ randomImage {" + " ID" * 1_900 + " } }"},
    "deep JSON (5,000 levels)": {"raw": b"[" * 5_000 + b"]" * 5_000},
    "256 KiB body of variables": {
        "raw": b'{"query": "{ __typename }", "variables": {"a": [' + b"1," * 120_000 + b"1]}}"
    },
}


@contextmanager
def api_process(data_dir: Path, redis_url: str) -> Iterator[httpx.Client]:
    port = free_port()
    env = {**os.environ, "PAKTUM_DATA_DIR": str(data_dir), "PAKTUM_REDIS_URL": redis_url,
           "PAKTUM_API_PORT": str(port), "PAKTUM_LOG_LEVEL": "WARNING"}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "paktum_api.main"], env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for _ in range(200):
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            yield client
    finally:
        process.terminate()
        process.wait(20)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def healthz_latencies(client: httpx.Client, seconds: float) -> list[float]:
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        client.get("/healthz").raise_for_status()
        latencies.append(time.perf_counter() - started)
        time.sleep(0.01)
    return latencies


def encoded(bomb: dict[str, object]) -> bytes:
    raw = bomb.get("raw")
    return raw if isinstance(raw, bytes) else json.dumps(bomb).encode()


def send(client: httpx.Client, body: bytes) -> httpx.Response:
    # Encoded once, beforehand: the clients must cost this process as little as possible.
    return client.post("/query", content=body, headers={"Content-Type": "application/json"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="how long each bomb is sent")
    parser.add_argument("--clients", type=int, default=4, help="clients sending the bomb at once")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="paktum-bench-api-"))
    redis = EmbeddedRedis(tmp / "redis").start()
    try:
        with api_process(tmp / "data", redis.url) as api:
            idle = healthz_latencies(api, args.seconds)
            idle_p99 = percentile(idle, 0.99)
            print(f"/healthz idle: p50 {statistics.median(idle) * 1000:.1f} ms, p99 {idle_p99 * 1000:.1f} ms")
            print(f"{'bomb':34s} {'status':>6s} {'refused in':>11s} {'healthz p50':>12s} {'p99':>9s} {'max':>9s} "
                  f"{'p99/idle':>9s}")  # fmt: skip
            for name, bomb in BOMBS.items():
                body = encoded(bomb)
                started = time.perf_counter()
                status = send(api, body).status_code
                once = time.perf_counter() - started
                stop = threading.Event()

                def attack(body: bytes = body, stop: threading.Event = stop) -> None:
                    with httpx.Client(base_url=api.base_url, timeout=120) as client:
                        while not stop.is_set():
                            send(client, body)

                attackers = [threading.Thread(target=attack) for _ in range(args.clients)]
                for thread in attackers:
                    thread.start()
                try:
                    busy = healthz_latencies(api, args.seconds)
                finally:
                    stop.set()
                    for thread in attackers:
                        thread.join()
                p99 = percentile(busy, 0.99)
                print(
                    f"{name:34s} {status:6d} {once * 1000:8.1f} ms {statistics.median(busy) * 1000:9.1f} ms "
                    f"{p99 * 1000:6.1f} ms {max(busy) * 1000:6.1f} ms {p99 / idle_p99:8.1f}x"
                )
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
