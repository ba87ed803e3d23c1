"""The GraphQL API at /query: the original Paktum's schema, with additions in its naming style."""
