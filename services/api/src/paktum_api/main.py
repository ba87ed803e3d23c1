"""paktum-api entry point: serve the app with uvicorn on PAKTUM_API_HOST:PAKTUM_API_PORT."""

from __future__ import annotations

import sys

import uvicorn

from paktum_api.app import create_app
from paktum_common.log import setup_logging
from paktum_common.settings import load_settings

# GraphQL documents are parsed and validated on worker threads (paktum_api.limits). A waiting thread gets the
# GIL after this interval: 1 ms rather than Python's 5 ms hands it back to the event loop quickly, so /healthz
# and small requests are not held up by some milliseconds per step behind a large document.
GIL_SWITCH_SECONDS = 0.001


def main() -> None:
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    if not settings.redis_url:
        sys.exit("paktum-api: PAKTUM_REDIS_URL is not set (`paktum up` starts Redis and sets it for you)")
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        # Forwarded headers are read by the app, from PAKTUM_TRUSTED_PROXIES only (paktum_api.links).
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
