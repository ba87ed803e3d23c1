"""paktum-cleanup entry point: one run (the Kubernetes CronJob), or a run every N seconds (`paktum up`)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading

from paktum_cleanup.progress import Progress
from paktum_cleanup.run import run_cleanup
from paktum_common.log import setup_logging
from paktum_common.metrics import serve_metrics
from paktum_common.settings import Settings, load_settings


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paktum-cleanup", description="Purge banned images, sweep for inconsistencies, recompute variant groups."
    )
    parser.add_argument("--repair", action="store_true", help="fix what the consistency sweep finds")
    parser.add_argument(
        "--every", type=int, metavar="SECONDS", help="run again every SECONDS until stopped (default: run once)"
    )
    return parser


def run_once(settings: Settings, repair: bool) -> int:
    """One run with its summary printed; the exit code is non-zero when a step failed."""
    summary = asyncio.run(run_cleanup(settings, repair, Progress()))
    for line in summary.lines():
        print(f"paktum cleanup: {line}", flush=True)
    return 0 if summary.ok else 1


def run_every(settings: Settings, repair: bool, seconds: int) -> int:
    """Run, wait, repeat; a failed run is reported and the next one tried. SIGTERM stops between runs."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        run_once(settings, repair)
        stop.wait(seconds)
    return 0


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    if not settings.redis_url:
        sys.exit("paktum-cleanup: PAKTUM_REDIS_URL is not set (`paktum up` starts Redis and sets it for you)")
    serve_metrics(settings.metrics_port)
    if args.every is not None:
        if args.every < 1:
            sys.exit("paktum-cleanup: --every must be at least 1 second")
        sys.exit(run_every(settings, args.repair, args.every))
    sys.exit(run_once(settings, args.repair))


if __name__ == "__main__":
    main()
