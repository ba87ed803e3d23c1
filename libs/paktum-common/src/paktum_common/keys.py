"""Redis key names shared between services, in one place so no two services spell one differently."""

# MD5s of images purged for a banned tag: the scraper skips them, the hasher refuses them.
BANNED_MD5 = "paktum:banned:md5"

# Tags banned at run time by an admin (the api's banTag), on top of PAKTUM_BANNED_TAGS; read by banned_tags_now.
BANNED_TAGS = "paktum:banned:tags"

# Pairs an admin marked as not variants of each other: the two IDs sorted and joined by ':'.
NOT_VARIANTS = "paktum:not_variants"

# Scrape requests from the api (startScrape), for the scraper to consume: a stream of {"queries", "source"}.
SCRAPE_REQUESTS = "paktum:scrape:requests"
