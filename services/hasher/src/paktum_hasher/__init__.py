"""paktum-hasher: consume posts, read or download the file, decode once, hash, thumbnail, store, index."""
