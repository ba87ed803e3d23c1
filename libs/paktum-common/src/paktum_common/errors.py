"""The error hierarchy: a bad input raises a specific error, the boundary maps it to a status or a dead letter.

Every error Paktum raises on purpose is a PaktumError; a service's own errors derive from these.
"""


class PaktumError(Exception):
    """Base of every error Paktum raises on purpose."""


class PermanentError(PaktumError):
    """Retrying cannot help (a corrupt file, a malformed post): dead-letter at once."""


class TransientError(PaktumError):
    """Retrying may help (a backend down, a timeout): leave the entry pending and retry later."""


class BadImageError(PermanentError):
    """The bytes are not an image we accept: not an image, truncated, too many pixels."""


class BannedImageError(PermanentError):
    """The file is one an admin or the banned-tag purge removed for good."""


class BadPostError(PermanentError):
    """A post is malformed: a missing field, an unknown rating, a URL we refuse."""


class SourceReadError(PermanentError):
    """The post's file cannot be read (missing, unreadable, too large)."""


class InvalidQueryError(PaktumError):
    """A search query or parameter is malformed; the message names the bad part."""


class SearchUnavailableError(TransientError):
    """The search backend cannot be reached or answered with an error."""


class StorageUnavailableError(TransientError):
    """The image store cannot take a write (disk full, quota, I/O error, read-only): an outage, not the post's fault."""


class NotAuthorizedError(PaktumError):
    """The request lacks the token it needs (or the feature that needs one is off)."""


class UnknownImageError(PaktumError):
    """An action names an image that is not in the catalog."""


class InvalidEditError(PaktumError):
    """An edit of tags or rating is malformed: not a tag, too many tags, an unknown rating; the message says which."""
