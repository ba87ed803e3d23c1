"""paktum-cleanup entry point (the Kubernetes CronJob)."""

from __future__ import annotations

import sys


def main() -> None:
    # Grouping, purge and sweep are the cleanup issue's work; until it lands this command says so plainly.
    sys.exit("paktum-cleanup: not built yet (variant groups, banned-tag purge and the sweep come next)")


if __name__ == "__main__":
    main()
