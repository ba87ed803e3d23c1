"""paktum-scraper entry point: scrape PAKTUM_SCRAPE_QUERIES once (the CronJob, its Jobs) or serve scrape requests."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

from paktum_common.contracts import ScrapeRequest
from paktum_common.errors import PaktumError
from paktum_common.log import setup_logging
from paktum_common.metrics import serve_metrics
from paktum_common.redis_client import connect
from paktum_common.settings import Settings, load_settings
from paktum_scraper.run import default_progress, exit_code, parse_queries, scrape, summary
from paktum_scraper.scrape_requests import Outcome, RequestServer, record_job_outcome
from paktum_scraper.sources import source_configs


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paktum-scraper", description="Scrape booru sites by tag and publish the posts for indexing."
    )
    parser.add_argument(
        "--serve-requests",
        action="store_true",
        help="run until stopped, scraping each request the api's startScrape queues (default: scrape "
        "PAKTUM_SCRAPE_QUERIES once and exit)",
    )
    return parser


async def serve_requests(settings: Settings) -> None:
    assert settings.redis_url
    redis = connect(settings.redis_url)
    server = RequestServer(settings, redis)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    try:
        await server.run()
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    if not settings.redis_url:
        sys.exit("paktum-scraper: PAKTUM_REDIS_URL is not set")
    if args.serve_requests:
        try:
            # A broken PAKTUM_SCRAPE_SOURCES would fail every request: say so once, at start.
            source_configs(settings)
        except PaktumError as exc:
            sys.exit(f"paktum-scraper: {exc}")
        serve_metrics(settings.metrics_port)
        asyncio.run(serve_requests(settings))
        return
    sys.exit(scrape_once(settings))


def scrape_once(settings: Settings) -> int:
    """The CronJob's run (and a startScrape Job's): PAKTUM_SCRAPE_QUERIES on PAKTUM_SCRAPE_SOURCE, then the exit code.

    A Job made for a request (PAKTUM_SCRAPE_REQUEST_ID) also records its outcome, where scrapeStatus finds it.
    """
    started = time.time()
    request_id = settings.scrape_request_id
    asked = ScrapeRequest(queries=settings.scrape_queries, source=",".join(settings.scrape_source), requested=0)
    queries = parse_queries(settings.scrape_queries)
    if not queries:
        problem = "PAKTUM_SCRAPE_QUERIES is empty (one query per line, tags separated by spaces)"
        return _refuse(settings, request_id, asked, problem, started)
    serve_metrics(settings.metrics_port)
    try:
        reports = asyncio.run(
            scrape(settings, settings.scrape_source, queries, max_posts=settings.scrape_max_posts,
                   progress=default_progress())
        )  # fmt: skip
    except PaktumError as exc:
        return _refuse(settings, request_id, asked, str(exc), started)
    for line in summary(reports):
        print(f"paktum-scraper: {line}")
    if request_id:
        asyncio.run(_record(settings, request_id, asked, Outcome.of(reports), started))
    return exit_code(reports)


def _refuse(settings: Settings, request_id: str, asked: ScrapeRequest, problem: str, started: float) -> int:
    print(f"paktum-scraper: {problem}", file=sys.stderr)
    if request_id:
        asyncio.run(_record(settings, request_id, asked, Outcome("rejected", problem), started))
    return 1


async def _record(settings: Settings, request_id: str, asked: ScrapeRequest, outcome: Outcome, started: float) -> None:
    assert settings.redis_url
    redis = connect(settings.redis_url)
    try:
        await record_job_outcome(redis, request_id, asked, outcome, started)
    finally:
        await redis.aclose()


if __name__ == "__main__":
    main()
