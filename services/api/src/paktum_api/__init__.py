"""paktum-api: REST, GraphQL, image files, thumbnails and the web gallery over the index, the groups and the store."""
