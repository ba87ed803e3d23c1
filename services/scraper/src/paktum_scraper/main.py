"""paktum-scraper entry point (the Kubernetes CronJob)."""

from __future__ import annotations

import sys


def main() -> None:
    # Booru sources are the scraper issue's work; until it lands this command says so plainly.
    sys.exit("paktum-scraper: booru scraping is not built yet; use `paktum import DIR` for local files")


if __name__ == "__main__":
    main()
