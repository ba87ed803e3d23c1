"""paktum-api entry point: serve the app with uvicorn on PAKTUM_API_HOST:PAKTUM_API_PORT."""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn

from paktum_api.app import create_app
from paktum_common.log import setup_logging
from paktum_common.settings import load_settings

# GraphQL documents are parsed and validated on worker threads (paktum_api.limits). A waiting thread gets the
# GIL after this interval: 1 ms rather than Python's 5 ms hands it back to the event loop quickly, so /healthz
# and small requests are not held up by some milliseconds per step behind a large document.
GIL_SWITCH_SECONDS = 0.001


def shared_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket several api processes bind at once (SO_REUSEPORT): the kernel spreads connections.

    Only processes of the same user can join a port this way (Linux), so another user cannot take its share.
    """
    family, kind, protocol, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, protocol)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(address)
    except OSError:
        listener.close()
        raise
    return listener


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="paktum-api", description="Serve Paktum's REST and GraphQL api.")
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="share the port with other paktum-api processes (SO_REUSEPORT), as `paktum up --api-workers` runs them",
    )
    args = parser.parse_args(argv)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    if not settings.redis_url:
        sys.exit("paktum-api: PAKTUM_REDIS_URL is not set (`paktum up` starts Redis and sets it for you)")
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        # Forwarded headers are read by the app, from PAKTUM_TRUSTED_PROXIES only (paktum_api.links).
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    if not args.reuse_port:
        server.run()
        return
    try:
        listener = shared_port_socket(settings.api_host, settings.api_port)
    except OSError as exc:
        sys.exit(f"paktum-api: cannot listen on {settings.api_host}:{settings.api_port}: {exc}")
    server.run(sockets=[listener])


if __name__ == "__main__":
    main()
