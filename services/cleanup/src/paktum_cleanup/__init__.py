"""paktum-cleanup: banned-tag purge, variant grouping, consistency sweep."""
