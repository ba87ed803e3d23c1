"""A full images disk is an outage, not a verdict: the hasher holds the batch until space is freed, and no
post is dead-lettered or loses a delivery.

The disk is real: a small tmpfs mounted over the images folder in a user and mount namespace of the hasher's
own (no root needed), filled to the last byte; the test frees it through /proc/<pid>/root."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paktum_common.settings import Settings
from tests.e2e.conftest import Process, wait_until
from tests.faults import ImageServer, RestartableRedis, corpus, publish, service_env, tally

HELD_LOGGED = "store unavailable; holding the batch"


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _namespaces_work(), reason="needs unprivileged user namespaces (unshare -rm) to mount a small tmpfs"
)


def test_a_full_images_disk_holds_the_batch_until_space_is_freed(
    tmp_path: Path, processes: list[Process], own_redis: RestartableRedis, image_server: ImageServer
) -> None:
    settings = Settings(data_dir=tmp_path / "data", redis_url=own_redis.url, max_deliveries=2)
    settings.images_dir.mkdir(parents=True)
    images = corpus(tmp_path / "files", image_server.url, 6)
    env = service_env(settings, "hasher-disk", PAKTUM_MAX_DELIVERIES="2", PAKTUM_RECLAIM_IDLE_MS="500")
    # Mount a 2 MiB tmpfs over the images folder and fill it, then exec the hasher in the same namespace.
    filler = settings.images_dir / ".filler"
    script = (
        f"mount -t tmpfs -o size=2m tmpfs '{settings.images_dir}' && "
        f"(dd if=/dev/zero of='{filler}' bs=64k 2>/dev/null; true) && "
        f"exec '{sys.executable}' -m paktum_hasher.main"
    )
    hasher = Process(["unshare", "-rm", "sh", "-c", script], env, tmp_path / "hasher.log")
    processes.append(hasher)
    wait_until(lambda: "hasher ready" in hasher.output(), 60, "the hasher to start")
    client = own_redis.client()
    publish(client, settings, images.posts)

    # Held several times over: more retries than the post's two deliveries, and none of them spent.
    wait_until(lambda: hasher.output().count(HELD_LOGGED) >= 4, 120, "the batch to be held on the full disk")
    assert tally(settings, images.md5s, client).dead == 0
    inside = Path(f"/proc/{hasher.popen.pid}/root") / str(settings.images_dir).lstrip("/")
    assert any(p.name.startswith(".filler") for p in inside.iterdir())  # the hasher's view of its disk
    (inside / ".filler").unlink()

    wait_until(lambda: tally(settings, images.md5s).indexed == 6, 120, "every image to be indexed once space is back")
    seen = tally(settings, images.md5s, client)
    assert seen.dead == 0
    stored = [p for p in inside.iterdir() if not p.name.startswith(".")]
    assert len(stored) == 6 and not [p for p in inside.iterdir() if p.name.startswith(".tmp-")]
    assert hasher.popen.poll() is None
    assert "Traceback" not in hasher.output()
