"""Hostile files against a decode worker under the hasher's budgets: CPU seconds and peak memory per file.

Each file is decoded in a fresh worker process forked from this one, running the decode pool's own worker
loop (`paktum_hasher.pool.serve`: the CPU timer and RLIMIT_CPU, RLIMIT_AS, the byte estimate in
decode_image) with the default budgets, so what it spends is what a hasher's worker would; the worker's
rusage (CPU, peak RSS) is read when it exits, even when the budget killed it. The peer is an ordinary
photo of the same decode: every figure is also printed as a ratio to it.

    make stress                                   # or: .venv/bin/python bench/hostile.py --side 6000
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass
from multiprocessing import Pipe
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/hostile.py, tests/imagefiles.py

from paktum_common.settings import Settings
from paktum_hasher.decode import decode_image
from paktum_hasher.pool import death_reason, serve
from tests.hostile import KINDS, hostile, jpeg_scan_bomb
from tests.imagefiles import encode, picture


@dataclass
class Figures:
    name: str
    size: int
    outcome: str
    cpu: float
    rss_mib: float
    wall: float


def measure(name: str, data: bytes, settings: Settings, phash_mode: str = "fast") -> Figures:
    """Decode `data` in a forked worker under the budgets; its CPU time and peak RSS from wait4."""
    parent, child = Pipe()
    report_in, report_out = Pipe(duplex=False)
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the worker
        parent.close()
        try:
            # The worker starts with this process's pages: count from there (resets its peak RSS to its RSS).
            start = _status_kib("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")
            serve(child, settings.decode_cpu_seconds, settings.decode_memory_mib)
            report_out.send(_status_kib("VmHWM") - start)
        finally:
            os._exit(0)
    child.close()
    report_out.close()
    args = (data, settings.max_image_pixels, settings.thumbnail_size, phash_mode)
    outcome = "?"
    try:
        parent.send((decode_image, args, {"memory_mib": settings.decode_memory_mib}))
        ok, value = parent.recv()
        outcome = f"decoded {value.width}x{value.height}" if ok else f"refused: {value}"
    except (EOFError, OSError):
        pass
    parent.close()
    try:
        peak_kib: int | None = report_in.recv()
    except EOFError:  # killed by its budget: no report
        peak_kib = None
    _, status, usage = os.wait4(pid, 0)
    if os.WIFSIGNALED(status):
        reason = death_reason(-os.WTERMSIG(status), settings.decode_cpu_seconds, settings.decode_memory_mib)
        outcome = f"stopped: {reason}"
    # Killed by its budget: no report, and its rusage peak includes what it started with.
    rss_mib = (peak_kib if peak_kib is not None else usage.ru_maxrss) / 1024
    return Figures(name, len(data), outcome, usage.ru_utime + usage.ru_stime, rss_mib, time.perf_counter() - started)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--side", type=int, default=10000, help="side of the 1-byte-per-pixel bombs; the others are half as wide"
    )
    parser.add_argument("--cpu-bomb-side", type=int, default=8000, help="side of the 100-scan JPEG (default 8000)")
    args = parser.parse_args()
    settings = Settings()
    print(
        f"budgets: {settings.decode_cpu_seconds:g} s of CPU, {settings.decode_memory_mib} MiB per decode, "
        f"{settings.max_image_pixels} pixels; bombs of side {args.side}",
        flush=True,
    )
    peer = measure("peer: 4000x3000 photo JPEG", encode(picture(1, (4000, 3000)), "JPEG", quality=90), settings)
    rows = [peer, measure("small: 64x64 PNG", encode(picture(2, (64, 64)), "PNG"), settings)]
    for name in KINDS:
        rows.append(measure(name, hostile(name, args.side // 2).data, settings))
    # At the pixel limit, over the byte budget: refused before a pixel is decoded.
    rows.append(measure("png-rgba-10900px (118.8 Mpx)", hostile("png-rgba", 10900).data, settings))
    rows.append(measure("webp-lossless-rgba-7000px", hostile("webp-lossless-rgba", 7000).data, settings))
    side = args.cpu_bomb_side
    rows.append(measure(f"jpeg-100-scans-{side}px-exact", jpeg_scan_bomb(100, (side, side)), settings, "exact"))
    rows.append(measure(f"jpeg-100-scans-{side}px-fast", jpeg_scan_bomb(100, (side, side)), settings, "fast"))
    # The same file under a CPU budget it exceeds: the worker is stopped at the budget, whatever the file.
    tight = settings.model_copy(update={"decode_cpu_seconds": 2.0})
    rows.append(measure(f"jpeg-100-scans-{side}px, 2 s budget", jpeg_scan_bomb(100, (side, side)), tight, "exact"))
    print("RSS: the decode's peak above what the worker started with")
    print(f"{'file':34} {'bytes':>9} {'CPU s':>7} {'xpeer':>6} {'RSS MiB':>8} {'xpeer':>6}  outcome")
    for row in rows:
        print(
            f"{row.name:34} {row.size:>9} {row.cpu:>7.2f} {row.cpu / peer.cpu:>6.2f} {row.rss_mib:>8.0f} "
            f"{row.rss_mib / peer.rss_mib:>6.2f}  {row.outcome[:110]}"
        )
    worst_cpu = max(rows, key=lambda r: r.cpu)
    worst_rss = max(rows, key=lambda r: r.rss_mib)
    print(f"most CPU: {worst_cpu.name} {worst_cpu.cpu:.2f} s (budget {settings.decode_cpu_seconds:g} s)")
    print(
        f"most memory: {worst_rss.name} {worst_rss.rss_mib:.0f} MiB peak RSS (budget {settings.decode_memory_mib} MiB)"
    )


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    main()
