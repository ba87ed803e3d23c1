"""paktum-api: REST (and later GraphQL) over the index, the groups and the image files."""
