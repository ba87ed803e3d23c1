"""Every Redis key Paktum uses, in one place: no two modules spell one differently, and an operator reads here
what lives in Redis."""

# The ingest stream (posts for the hashers) and its dead letters: the defaults of PAKTUM_STREAM and
# PAKTUM_DEAD_LETTER_STREAM (settable so two installations can share one Redis).
INGEST_STREAM = "paktum:ingest"
DEAD_LETTERS = "paktum:ingest:dead"
# Per consumer-group stream: the error of each failed delivery of an entry still pending (hash: entry ID ->
# JSON list), so the dead letter of an entry that ran out of deliveries says why each one failed.
ENTRY_ERRORS = "{stream}:errors"

# MD5s of images removed for good (purged for a banned tag, deleted by an admin, or refused as a re-upload
# of a purged picture): the scraper skips them, the hasher refuses them.
BANNED_MD5 = "paktum:banned:md5"

# Tags banned at run time by an admin (the api's banTag), on top of PAKTUM_BANNED_TAGS; read by banned_tags_now.
BANNED_TAGS = "paktum:banned:tags"

# Scrape requests from the api (startScrape), for the scraper to consume: a stream of {"queries", "source"}.
SCRAPE_REQUESTS = "paktum:scrape:requests"
SCRAPE_REQUESTS_GROUP = "scrapers"  # the consumer group of `paktum-scraper --serve-requests`
# What became of each request, written as it is acknowledged: a stream of {"request", "status", "reason", ...}.
SCRAPE_RESULTS = "paktum:scrape:results"

# The pHash registry: every indexed image's pHash (hash: md5 -> 16 hex digits), written as the hasher
# indexes an image; its chunk tables (sets of "md5:phash" per 16-bit chunk value) find near hashes
# without a scan. Degenerate hashes are in the registry but not in the chunk tables: they never link.
PHASHES = "paktum:phash"
PHASH_CHUNKS = "paktum:phash:chunk"
# Each image's alternate pHashes (mirrored, rotated, on the other background; paktum_common.phash), md5 ->
# 16 hex digits each, one after the other; absent for images indexed before they were computed.
PHASH_ALTERNATES = "paktum:phash:alternates"
# Each image's Symmetry (paktum_common.phash: "s" when symmetric, else "-", then its symmetric hashes in 16 hex
# digits each), and chunk tables over the symmetric hashes: of the images that are not symmetric, and of those
# that are. A symmetric image is in the latter and not in PHASH_CHUNKS: it is matched by its symmetric hashes alone.
PHASH_SYMMETRY = "paktum:phash:symmetry"
SYMMETRIC_CHUNKS = "paktum:phash:symchunk"
SYMMETRIC_ONLY_CHUNKS = "paktum:phash:symonly"
# Chunk tables over the pHash of each transparent image (not symmetric) flattened on its other background (its
# alternate slot PRIMARY_SLOTS): an opaque re-save of it on that background finds it by its own plain pHash.
OTHER_BACKGROUND_CHUNKS = "paktum:phash:otherchunk"
# Each signed image's SimHash (paktum_common.phash.simhash_of; md5 -> 16 hex digits) and chunk tables over them
# (images that are not symmetric): search by image and ingest linking find signature neighbours through them.
SIMHASHES = "paktum:phash:simhash"
SIMHASH_CHUNKS = "paktum:phash:simchunk"
# Where a rehash stopped (paktum_hasher.rehash): the HSCAN cursor over PHASHES after its last whole batch;
# absent when none is under way.
REHASH_CURSOR = "paktum:rehash:cursor"
# The same for images removed for good: a new image near one of them is refused as a re-upload. PURGED_AT
# (md5 -> UNIX seconds) says when, so the cleanup purge removes only images that came in after it.
PURGED_PHASHES = "paktum:purged:phash"
PURGED_CHUNKS = "paktum:purged:chunk"
PURGED_AT = "paktum:purged:at"
# Their Symmetry and symmetric-hash chunk tables, as PHASH_SYMMETRY and its tables: a re-saved purged star is found
# by its symmetric hash, and a distinct star whose noisy pHash is near a purged one is not refused.
PURGED_SYMMETRY = "paktum:purged:symmetry"
PURGED_SYMMETRIC_CHUNKS = "paktum:purged:symchunk"
PURGED_SYMMETRIC_ONLY_CHUNKS = "paktum:purged:symonly"

# Variant groups, replaced as a whole by each cleanup run (built under GROUPS_BUILD, then renamed).
GROUP_OF = "paktum:groups:of"  # hash: md5 -> group ID (the group's anchor, its first image)
# hash: group ID -> JSON {"anchor", "members": [[md5, phash, d(, alternates(, symmetry(, hue mark)))]]}
GROUP_MEMBERS = "paktum:groups:members"
GROUP_STATS = "paktum:groups:stats"  # hash: the last full run's figures
GROUPS_BUILD = "paktum:groups:build"  # prefix of a run's unfinished keys (they expire if the run dies)

# "Not variants" decisions: pairs "a:b" (a < b) that must never link, and each image's partners.
NOT_VARIANTS = "paktum:notvariants"
NOT_VARIANTS_OF = "paktum:notvariants:of"  # + ":<md5>": set of md5s

# Owners' edits of tags and rating (the api's updateImage/updateImages): hash md5 -> TagEdit JSON, applied by the
# catalog on every index write, so a later scrape or import of the same file merges with them and they win.
TAG_EDITS = "paktum:edits:tags"
# What was edited, by whom (a token's fingerprint, never the token): a capped stream of the latest changes.
TAG_EDIT_LOG = "paktum:edits:log"
TAG_EDIT_LOCK = "paktum:edits:lock"  # held by the one edit writing remembered edits and documents at a time
TAG_EDIT_HITS = "paktum:edits:hits:"  # + a random ID: a bulk edit's list of the md5s its query found (expires)

# Held while a cleanup run works, so two runs never interleave their swaps.
CLEANUP_LOCK = "paktum:cleanup:lock"

# Scraper: per source, a hash of query -> the newest post id a complete run saw; and the shared rate limit.
SCRAPE_CURSORS = "paktum:scrape:cursor:{source}"
SCRAPE_RATE = "paktum:scrape:rate:{source}"

# Job statistics (last run of each periodic job, for /metrics): the set of job names, and a hash per job.
JOBS = "paktum:jobs"
JOB_PREFIX = "paktum:jobs:"
