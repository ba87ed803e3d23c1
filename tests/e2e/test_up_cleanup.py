"""`paktum up` runs the cleanup on its interval, beside the api and the hashers, and stops it on Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from paktum_cli.embedded_redis import free_port


def test_up_runs_cleanup_every_interval(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAKTUM_")}
    env.update(PAKTUM_CLEANUP_INTERVAL="1", PAKTUM_API_PORT=str(free_port()), PAKTUM_HASHER_WORKERS="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "paktum_cli.main", "--data-dir", str(tmp_path / "data"), "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    finished = 0
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while finished < 2:
            assert time.monotonic() < deadline, "".join(seen[-40:])
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(line)
            if line.startswith("cleanup") and "paktum cleanup: cleanup finished" in line:
                finished += 1
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, "".join(seen[-40:])
