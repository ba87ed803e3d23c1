"""Signed imgproxy URLs: imgproxy's own scheme, HMAC-SHA256 over salt + path, URL-safe base64 without padding."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from dataclasses import dataclass

from paktum_common.log import log_event
from paktum_common.settings import Settings

log = logging.getLogger("paktum.api")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_path(key: bytes, salt: bytes, path: str) -> str:
    """The signature of `path` (everything after the signature segment, starting with '/')."""
    return _b64(hmac.new(key, salt + path.encode("utf-8"), hashlib.sha256).digest())


@dataclass(frozen=True)
class Imgproxy:
    base_url: str
    key: bytes
    salt: bytes
    options: str
    source: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Imgproxy | None:
        """None (own thumbnails) unless the URL, key and salt are all set: an unsigned URL is never made."""
        given = (settings.imgproxy_url, settings.imgproxy_key, settings.imgproxy_salt)
        if not all(given):
            if any(given):
                log_event(log, logging.WARNING, "imgproxy off: PAKTUM_IMGPROXY_URL, _KEY and _SALT are all needed")
            return None
        assert settings.imgproxy_url and settings.imgproxy_key and settings.imgproxy_salt
        return cls(
            base_url=settings.imgproxy_url.rstrip("/"),
            key=bytes.fromhex(settings.imgproxy_key.get_secret_value()),
            salt=bytes.fromhex(settings.imgproxy_salt.get_secret_value()),
            options=settings.imgproxy_options.strip("/"),
            source=settings.imgproxy_source,
        )

    def url(self, filename: str, extension: str = "jpg") -> str:
        """A signed URL for the stored file; the source is base64-encoded, so any name is URL-safe."""
        path = f"/{self.options}/{_b64((self.source + filename).encode('utf-8'))}.{extension}"
        return f"{self.base_url}/{sign_path(self.key, self.salt, path)}{path}"
