"""paktum-scraper entry point: scrape PAKTUM_SCRAPE_QUERIES once (the CronJob), or serve the api's scrape requests."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from paktum_common.errors import PaktumError
from paktum_common.log import setup_logging
from paktum_common.metrics import serve_metrics
from paktum_common.redis_client import connect
from paktum_common.settings import Settings, load_settings
from paktum_scraper.run import default_progress, exit_code, parse_queries, scrape, summary
from paktum_scraper.scrape_requests import RequestServer
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
    queries = parse_queries(settings.scrape_queries)
    if not queries:
        sys.exit("paktum-scraper: PAKTUM_SCRAPE_QUERIES is empty (one query per line, tags separated by spaces)")
    sources = settings.scrape_source
    serve_metrics(settings.metrics_port)
    try:
        reports = asyncio.run(
            scrape(settings, sources, queries, max_posts=settings.scrape_max_posts, progress=default_progress())
        )
    except PaktumError as exc:
        sys.exit(f"paktum-scraper: {exc}")
    for line in summary(reports):
        print(f"paktum-scraper: {line}")
    sys.exit(exit_code(reports))


if __name__ == "__main__":
    main()
