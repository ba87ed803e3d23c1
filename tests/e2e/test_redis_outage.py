"""Redis killed or shut down and started again under running services: none exits, no image is lost or doubled.

The services run as they are deployed (their own processes, their entry points); Redis is a redis-server of
the test's own, killed with SIGKILL or stopped with SHUTDOWN and started again on the same port."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from paktum_cli.embedded_redis import free_port
from paktum_common import keys
from paktum_common.settings import Settings
from tests.e2e.conftest import Process, api_ready, wait_until
from tests.faults import ImageServer, RestartableRedis, corpus, lines_with, publish, service_env, tally

OUTAGE_LOGGED = "redis unavailable; waiting for it"
BACK_LOGGED = "redis is back"


def _settings(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", redis_url=redis_url)


def _hasher(tmp_path: Path, settings: Settings, processes: list[Process], name: str = "hasher-a") -> Process:
    hasher = Process(
        [sys.executable, "-m", "paktum_hasher.main"], service_env(settings, name), tmp_path / f"{name}.log"
    )
    processes.append(hasher)
    wait_until(lambda: "hasher ready" in hasher.output(), 60, "the hasher to start")
    return hasher


@pytest.mark.parametrize(
    ("how", "downtime"),
    [("kill", 0.5), ("shutdown", 0.5), ("kill", 4.0), ("shutdown", 4.0)],
    ids=["sigkill-half-second", "shutdown-half-second", "sigkill-4s", "shutdown-4s"],
)
def test_a_hasher_rides_out_a_redis_restart_and_indexes_every_image_once(
    tmp_path: Path, processes: list[Process], own_redis: RestartableRedis, image_server: ImageServer,
    how: str, downtime: float,
) -> None:  # fmt: skip
    settings = _settings(tmp_path, own_redis.url)
    images = corpus(tmp_path / "files", image_server.url, 16)
    hasher = _hasher(tmp_path, settings, processes)
    client = own_redis.client()
    publish(client, settings, images.posts[:10])
    wait_until(lambda: tally(settings, images.md5s).indexed >= 2, 60, "the first images to be indexed")

    own_redis.kill() if how == "kill" else own_redis.shutdown()
    time.sleep(downtime)
    own_redis.start()
    client = own_redis.client()
    publish(client, settings, images.posts[10:])

    wait_until(lambda: tally(settings, images.md5s).indexed == 16, 120, "every image to be indexed")
    wait_until(lambda: client.xlen(settings.stream) == 0, 30, "the stream to be drained")
    seen = tally(settings, images.md5s, client)
    assert hasher.popen.poll() is None, hasher.output()
    assert (seen.indexed, seen.files, seen.strays, seen.dead) == (16, 16, 0, 0)
    log = hasher.output()
    assert "Traceback" not in log
    # Once per outage, never per retry (a half-second restart may pass unseen inside redis-py's own retries).
    assert lines_with(log, OUTAGE_LOGGED) <= 1
    assert lines_with(log, OUTAGE_LOGGED) == lines_with(log, BACK_LOGGED)
    if downtime > 1:
        assert lines_with(log, OUTAGE_LOGGED) == 1


def test_a_hasher_carries_on_after_redis_comes_back_without_its_data(
    tmp_path: Path, processes: list[Process], own_redis: RestartableRedis, image_server: ImageServer
) -> None:
    """A Redis without persistence forgets the stream and the consumer group: the hasher makes the group again
    and indexes what is published next (what was published before the restart went with Redis)."""
    settings = _settings(tmp_path, own_redis.url)
    images = corpus(tmp_path / "files", image_server.url, 8)
    hasher = _hasher(tmp_path, settings, processes)
    publish(own_redis.client(), settings, images.posts[:4])
    wait_until(lambda: tally(settings, images.md5s).indexed == 4, 60, "the first images to be indexed")

    own_redis.kill()
    own_redis.wipe()
    time.sleep(2)
    own_redis.start()
    client = own_redis.client()
    publish(client, settings, images.posts[4:])

    wait_until(lambda: tally(settings, images.md5s).indexed == 8, 120, "the images published after the restart")
    assert hasher.popen.poll() is None, hasher.output()
    assert tally(settings, images.md5s, client).dead == 0
    assert "Traceback" not in hasher.output()


def test_the_scrape_request_server_rides_out_a_redis_restart(
    tmp_path: Path, processes: list[Process], own_redis: RestartableRedis
) -> None:
    settings = _settings(tmp_path, own_redis.url)
    server = Process(
        [sys.executable, "-m", "paktum_scraper.main", "--serve-requests"],
        service_env(settings, "scraper-a"),
        tmp_path / "scraper.log",
    )
    processes.append(server)
    wait_until(lambda: "serving scrape requests" in server.output(), 60, "the scraper to serve requests")

    own_redis.kill()
    time.sleep(3)
    own_redis.start()
    client = own_redis.client()
    # A request that can never succeed is still answered: the server reads and records it after the outage.
    client.xadd(keys.SCRAPE_REQUESTS, {"queries": "", "source": "", "requested": "0"})

    wait_until(lambda: client.xlen(keys.SCRAPE_RESULTS) == 1, 60, "the request's outcome")
    [(_, outcome)] = client.xrange(keys.SCRAPE_RESULTS)
    assert outcome["status"] == "rejected"
    assert server.popen.poll() is None, server.output()
    log = server.output()
    assert lines_with(log, OUTAGE_LOGGED) == 1 and lines_with(log, BACK_LOGGED) == 1
    assert "Traceback" not in log


def test_import_into_a_redis_that_is_gone_says_so_and_exits_non_zero(
    tmp_path: Path, processes: list[Process], own_redis: RestartableRedis, image_server: ImageServer
) -> None:
    settings = _settings(tmp_path, own_redis.url)
    corpus(tmp_path / "files", image_server.url, 3)
    own_redis.kill()
    imp = _import(tmp_path, settings, processes)
    assert imp.wait(120) == 1
    out = imp.output()
    assert "Redis went away after 0 posts were published" in out
    assert "Traceback" not in out


def _import(tmp_path: Path, settings: Settings, processes: list[Process], *options: str) -> Process:
    imp = Process(
        [sys.executable, "-m", "paktum_cli.main", "import", str(tmp_path / "files"), *options],
        service_env(settings, "import"),
        tmp_path / "import.log",
    )
    processes.append(imp)
    return imp


def test_import_wait_without_a_hasher_says_so_instead_of_waiting_forever(
    tmp_path: Path, processes: list[Process], own_redis: RestartableRedis, image_server: ImageServer
) -> None:
    settings = _settings(tmp_path, own_redis.url)
    corpus(tmp_path / "files", image_server.url, 3)
    imp = _import(tmp_path, settings, processes, "--wait", "--hasher-timeout", "1")
    assert imp.wait(60) == 3
    out = imp.output()
    assert "published 3" in out and "no hasher has read the stream" in out
    assert own_redis.client().xlen(settings.stream) == 3  # nothing was lost meanwhile


def test_import_wait_with_a_hasher_at_work_waits_for_it(
    tmp_path: Path, processes: list[Process], own_redis: RestartableRedis, image_server: ImageServer
) -> None:
    settings = _settings(tmp_path, own_redis.url)
    images = corpus(tmp_path / "files", image_server.url, 3)
    _hasher(tmp_path, settings, processes)
    imp = _import(tmp_path, settings, processes, "--wait", "--hasher-timeout", "5")
    assert imp.wait(120) == 0, imp.output()
    assert "the hashers are done" in imp.output()
    assert tally(settings, images.md5s).indexed == 3


def _metric(port: int, sample: str) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return None


def test_an_outage_shows_in_readyz_and_in_every_services_metrics(
    tmp_path: Path, processes: list[Process], own_redis: RestartableRedis
) -> None:
    settings = _settings(tmp_path, own_redis.url)
    metrics_port, api_port = free_port(), free_port()
    hasher = Process(
        [sys.executable, "-m", "paktum_hasher.main"],
        service_env(settings, "hasher-m", PAKTUM_METRICS_PORT=str(metrics_port)),
        tmp_path / "hasher.log",
    )
    api = Process(
        [sys.executable, "-m", "paktum_api.main"],
        service_env(settings, "api", PAKTUM_API_PORT=str(api_port)),
        tmp_path / "api.log",
    )
    processes += [hasher, api]
    base = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: api_ready(base) and "hasher ready" in hasher.output(), 60, "the api and the hasher")
    up = 'paktum_redis_up{service="hasher"}'
    assert _metric(metrics_port, up) == 1

    own_redis.kill()
    wait_until(lambda: _metric(metrics_port, up) == 0, 30, "the hasher to show the outage")
    ready = httpx.get(f"{base}/readyz", timeout=10)
    assert ready.status_code == 503 and ready.json()["problems"]["redis"].startswith("unavailable for")
    assert _metric(api_port, 'paktum_redis_up{service="api"}') == 0
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200  # alive, only not ready

    own_redis.start()
    wait_until(lambda: _metric(metrics_port, up) == 1, 30, "the hasher to see Redis back")
    wait_until(lambda: api_ready(base), 30, "the api to be ready again")
    assert _metric(metrics_port, 'paktum_redis_outages_total{service="hasher"}') == 1
    assert hasher.popen.poll() is None and api.popen.poll() is None


@pytest.mark.parametrize("service", ["hasher", "scraper"])
def test_sigterm_during_an_outage_stops_a_service_cleanly(
    tmp_path: Path, processes: list[Process], own_redis: RestartableRedis, service: str
) -> None:
    """Waiting for Redis never outlives a stop: `paktum up` stops its children while its Redis is gone."""
    settings = _settings(tmp_path, own_redis.url)
    args = {"hasher": ["paktum_hasher.main"], "scraper": ["paktum_scraper.main", "--serve-requests"]}[service]
    child = Process([sys.executable, "-m", *args], service_env(settings, f"{service}-t"), tmp_path / "child.log")
    processes.append(child)
    wait_until(lambda: "ready" in child.output() or "serving" in child.output(), 60, "the service to start")
    own_redis.kill()
    wait_until(lambda: OUTAGE_LOGGED in child.output(), 30, "the outage to be noticed")
    child.signal(signal.SIGTERM)
    assert child.wait(30) == 0
    assert "stopped while redis was unavailable" in child.output()
    assert "Traceback" not in child.output()
