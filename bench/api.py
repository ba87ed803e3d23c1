"""Load benchmark of the api: REST and GraphQL serving the same page of images to many clients at once.

Run with `make bench-api` (or `.venv/bin/python bench/api.py --help`). It builds (once, cached under
bench/.corpus/, shared with bench/search.py) a SQLite index of generated images, writes variant groups for
them into an embedded Redis (about one image in ten has 1-3 variants, so `Related` has work to do), starts
`--workers` real `paktum-api` processes on one loopback port (SO_REUSEPORT, as `paktum up --api-workers`
runs them), and drives each API with `--clients` concurrent keep-alive clients for `--seconds`:

- REST: `GET /api/search?query=<tag>&limit=<limit>`;
- GraphQL: the same page as the original Paktum's web client asks for it, every field and `Related` with
  every field: `searchImages(query: "<tag>", limit: <limit>) { ... Related { ... } }`.

Each client cycles through the same tags (each has a few hundred to a few thousand hits). It prints
requests/s, p50 and p99 latency for each, GraphQL/REST as a ratio of throughput, the api's CPU per request
(all its processes and threads), the load average and how much CPU the clients took. The clients run in this
process, on an event loop of their own, never in the api's, each on its own connection with its requests made
into bytes once (`Connection`): a few per cent of a core, so on a quiet machine each API runs as fast as the
api can serve it. The api's CPU share is what the machine has left, so compare ratios from one run, and the
CPU per request (which load on the machine hardly moves) across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis.asyncio import Redis
from search import CORPUS, build, corpus_documents

from paktum_cli.embedded_redis import EmbeddedRedis, free_port
from paktum_common.contracts import ImageDocument
from paktum_common.groups import GroupsBuild, VariantGroup

# Tags of a few hundred to a few thousand hits each at 100,000 images (Zipf popularity, bench/search.py).
TAGS = [f"tag_{n}" for n in (40, 60, 80, 100, 150, 200, 250, 300, 350, 400)]
ORIGINAL_FIELDS = "ID Url ThumbnailUrl Tags Tagstring Rating Added PHash Size Width Height Filename"
GROUPED_SHARE = 0.1  # images that anchor a variant group


def graphql_page(tag: str, limit: int) -> str:
    # As the original web client writes it: the search text inline, so each tag is its own document text.
    return (
        f'query {{ searchImages(query: "{tag}", limit: {limit}) '
        f"{{ {ORIGINAL_FIELDS} Related {{ {ORIGINAL_FIELDS} }} }} }}"
    )


def variant_groups(docs: list[ImageDocument], seed: int = 7) -> list[VariantGroup]:
    """About one image in ten with 1-3 of the images after it as variants: groups as the cleanup run writes them."""
    rng = random.Random(seed)
    groups = []
    index = 0
    while index < len(docs) - 4:
        if rng.random() < GROUPED_SHARE:
            members = docs[index : index + 1 + rng.randint(1, 3)]
            groups.append(VariantGroup.around(members[0].ID, {d.ID: d.PHash for d in members}))
            index += len(members)
        else:
            index += 1
    return groups


async def write_groups(redis_url: str, docs: list[ImageDocument]) -> int:
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        groups = variant_groups(docs)
        build_run = GroupsBuild(redis, "bench")
        for start in range(0, len(groups), 1000):
            await build_run.add(groups[start : start + 1000])
        await build_run.publish({"groups": len(groups)})
        return len(groups)
    finally:
        await redis.aclose()


@contextmanager
def api_processes(workers: int, data_dir: Path, index: Path, redis_url: str) -> Iterator[tuple[str, list[int]]]:
    """`workers` api processes sharing one loopback port; yields the base URL (once all answer) and their pids."""
    port = free_port()
    env = {**os.environ, "PAKTUM_DATA_DIR": str(data_dir), "PAKTUM_REDIS_URL": redis_url,
           "PAKTUM_SEARCH_URL": f"sqlite:///{index.resolve()}", "PAKTUM_API_PORT": str(port),
           "PAKTUM_LOG_LEVEL": "WARNING"}  # fmt: skip
    command = [sys.executable, "-m", "paktum_api.main", *(["--reuse-port"] if workers > 1 else [])]
    processes = [subprocess.Popen(command, env=env) for _ in range(workers)]
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, processes)
        yield base, [p.pid for p in processes]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(30)


def _wait_ready(base: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            sys.exit("bench/api.py: an api process exited while starting")
        try:
            # A connection reaches one worker; all of them are up once fresh connections keep succeeding.
            for _ in range(4 * len(processes)):
                httpx.get(f"{base}/healthz", timeout=5).raise_for_status()
            return
        except httpx.TransportError:
            time.sleep(0.1)
    sys.exit("bench/api.py: the api did not answer within 120 s")


@dataclass
class Outcome:
    name: str
    latencies: list[float]
    failures: int
    seconds: float
    client_cpu: float  # CPU seconds of this process (the clients) over the measured window
    api_cpu: float  # CPU seconds of the api processes (every thread) over the measured window
    load: tuple[float, float, float]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def line(self) -> str:
        ordered = sorted(self.latencies) or [float("nan")]
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        load = " ".join(f"{x:.2f}" for x in self.load)
        return (
            f"{self.name:<8} {self.rate:>10.1f} {statistics.median(ordered) * 1000:>9.1f} {p99 * 1000:>9.1f} "
            f"{self.failures:>7d} {self.api_cpu * 1000 / max(1, len(self.latencies)):>14.1f} "
            f"{self.client_cpu / self.seconds:>10.0%}   {load}"
        )


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of these processes so far, all their threads (Linux: /proc/PID/stat)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of the line
    return total / os.sysconf("SC_CLK_TCK")


def wire(request: httpx.Request) -> bytes:
    """The request as the bytes of an HTTP/1.1 request on a keep-alive connection, made once for all clients."""
    lines = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1", f"Host: {request.url.netloc.decode()}"]
    body = request.read()
    if body:
        lines += [f"Content-Type: {request.headers['content-type']}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive connection that sends ready-made requests and reads each answer by its Content-Length.

    A general client (httpx) spent 1-4 ms of CPU per page on this 2-core machine, as much as the api's REST
    page itself: the clients then held REST back and flattered the ratio. This one costs a few tens of
    microseconds, so each API is measured by what the api can do."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(value)
                for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
                if name.strip().lower() == b"content-length"
            )
            return int(head[9:12]), await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, StopIteration, ValueError):
            self.close()  # a broken or unexpected answer: a new connection for the next request
            raise ConnectionError("the api's answer could not be read") from None

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def drive(
    name: str, base: str, requests: list[httpx.Request], clients: int, seconds: float, warmup: float, pids: list[int]
) -> Outcome:
    """`clients` loops sending `requests` in turn, back to back; only what completes in the window counts."""
    url = httpx.URL(base)
    ready = [wire(request) for request in requests]
    connections = [Connection(url.host, url.port or 80) for _ in range(clients)]
    latencies: list[float] = []
    failures = 0
    start = time.perf_counter() + warmup
    end = start + seconds

    async def one_client(connection: Connection, offset: int) -> None:
        nonlocal failures
        turn = offset
        while True:
            request = ready[turn % len(ready)]
            turn += 1
            sent = time.perf_counter()
            if sent >= end:
                return
            try:
                status, body = await asyncio.wait_for(connection.exchange(request), 60)
                ok = status == 200 and b'"errors"' not in body
            except (ConnectionError, TimeoutError):
                ok = False
            done = time.perf_counter()
            if sent >= start and done <= end:
                if ok:
                    latencies.append(done - sent)
                else:
                    failures += 1

    try:
        tasks = [asyncio.create_task(one_client(c, n)) for n, c in enumerate(connections)]
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        cpu_before, api_before = time.process_time(), cpu_seconds(pids)
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        cpu, api_cpu, load = time.process_time() - cpu_before, cpu_seconds(pids) - api_before, os.getloadavg()
        await asyncio.gather(*tasks)
    finally:
        for connection in connections:
            connection.close()
    return Outcome(name, latencies, failures, seconds, cpu, api_cpu, load)


def requests_for(base: str, limit: int) -> tuple[list[httpx.Request], list[httpx.Request]]:
    rest = [httpx.Request("GET", f"{base}/api/search", params={"query": tag, "limit": limit}) for tag in TAGS]
    graphql = [httpx.Request("POST", f"{base}/query", json={"query": graphql_page(tag, limit)}) for tag in TAGS]
    return rest, graphql


def check_pages(base: str, limit: int) -> str:
    """One page of each, checked: the same images in both shapes, and how many Related the GraphQL page has."""
    rest = httpx.get(f"{base}/api/search", params={"query": TAGS[0], "limit": limit}, timeout=60).json()
    answer = httpx.post(f"{base}/query", json={"query": graphql_page(TAGS[0], limit)}, timeout=60).json()
    if "errors" in answer or len(rest["results"]) != limit or len(answer["data"]["searchImages"]) != limit:
        sys.exit(f"bench/api.py: a page is not what was asked for: {str(answer)[:300]}")
    related = sum(len(image["Related"]) for image in answer["data"]["searchImages"])
    return f"{limit} images a page; GraphQL's page had {related} Related images"


@contextmanager
def profiled(pid: int, seconds: float, output: Path | None) -> Iterator[None]:
    """py-spy (the `bench` dependency group) sampling the api process meanwhile, the thread holding the GIL, as
    collapsed stacks in `output`."""
    if output is None:
        yield
        return
    command = ["py-spy", "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--gil",
               "--output", str(output), "--duration", str(max(1, int(seconds))), "--nonblocking"]  # fmt: skip
    spy = subprocess.Popen([str(Path(sys.executable).parent / command[0]), *command[1:]], stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.wait(60)


async def measure(base: str, pids: list[int], args: argparse.Namespace) -> None:
    rest_requests, graphql_requests = requests_for(base, args.limit)
    print(
        f"{'':<8} {'requests/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7} {'api CPU ms/req':>14} "
        f"{'client CPU':>10}   load average"
    )
    rates, costs = {}, {}
    for name, requests in (("REST", rest_requests), ("GraphQL", graphql_requests)):
        if args.only in (None, name.lower()):
            with profiled(pids[0], args.warmup + args.seconds, args.profile):
                outcome = await drive(name, base, requests, args.clients, args.seconds, args.warmup, pids)
            print(outcome.line(), flush=True)
            rates[name] = outcome.rate
            costs[name] = outcome.api_cpu / max(1, len(outcome.latencies))
    if len(rates) == 2:
        ratio = rates["GraphQL"] / rates["REST"] if rates["REST"] else float("nan")
        print(f"GraphQL/REST throughput: {ratio:.2f}x (the goal: at least 0.50x)")
        # The api's own CPU per answer: what the ratio would be on a machine the api had to itself.
        print(f"REST/GraphQL api CPU per request: {costs['REST'] / costs['GraphQL']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000, help="images in the index (default 100,000)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per API (default 15)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring (default 2)")
    parser.add_argument("--limit", type=int, default=50, help="images a page, 1-50 (default 50)")
    parser.add_argument("--workers", type=int, default=1, help="api processes on the port (default 1)")
    parser.add_argument("--only", choices=("rest", "graphql"), help="drive one API only")
    parser.add_argument(
        "--profile",
        type=Path,
        help="sample the api with py-spy while each API is driven: collapsed stacks of the thread holding the GIL "
        "(where the CPU goes) to FILE (py-spy is in the `bench` dependency group: "
        ".tools/bin/uv sync --frozen --inexact --group bench)",
    )
    args = parser.parse_args()
    if args.profile is not None and args.workers != 1:
        parser.error("--profile samples one api process: leave --workers at 1")
    if not 1 <= args.limit <= 50:
        parser.error("--limit must be from 1 to 50 (REST's maximum page)")
    CORPUS.mkdir(exist_ok=True)
    index = CORPUS / f"search-{args.images}.sqlite3"
    docs = corpus_documents(args.images)
    asyncio.run(build(index, args.images, docs))  # once; later runs find it built
    tmp = Path(tempfile.mkdtemp(prefix="paktum-bench-api-"))
    redis = EmbeddedRedis(tmp / "redis").start()
    try:
        # The same generated documents as the index, so the groups name indexed images.
        groups = asyncio.run(write_groups(redis.url, docs))
        del docs
        with api_processes(args.workers, tmp / "data", index, redis.url) as (base, pids):
            print(
                f"{args.images:,} images, {groups:,} variant groups; {args.workers} api process(es), "
                f"{args.clients} clients, {args.seconds:.0f} s each; {check_pages(base, args.limit)}; "
                f"{os.cpu_count()} cores"
            )
            asyncio.run(measure(base, pids, args))
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
