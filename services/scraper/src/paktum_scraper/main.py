"""paktum-scraper entry point (the Kubernetes CronJob): scrape PAKTUM_SCRAPE_QUERIES, print a summary, exit."""

from __future__ import annotations

import asyncio
import sys

from paktum_common.errors import PaktumError
from paktum_common.log import setup_logging
from paktum_common.metrics import serve_metrics
from paktum_common.settings import load_settings
from paktum_scraper.run import default_progress, exit_code, parse_queries, scrape, summary


def main() -> None:
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    if not settings.redis_url:
        sys.exit("paktum-scraper: PAKTUM_REDIS_URL is not set")
    queries = parse_queries(settings.scrape_queries)
    if not queries:
        sys.exit("paktum-scraper: PAKTUM_SCRAPE_QUERIES is empty (one query per line, tags separated by spaces)")
    sources = [name.strip() for name in settings.scrape_source.split(",") if name.strip()]
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
