"""paktum-scraper: find posts (on booru sites, or in a local folder) and publish them to the ingest stream."""
