"""Redis key names shared between services, in one place so no two services spell one differently."""

# MD5s of images purged for a banned tag: the scraper skips them, the hasher refuses them.
BANNED_MD5 = "paktum:banned:md5"
