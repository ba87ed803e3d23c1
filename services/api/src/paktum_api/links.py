"""The base of URL and ThumbnailURL: PAKTUM_PUBLIC_URL, else a trusted proxy's forwarded headers, else the
address the connection came in on. Never the `Host` a client sends: a link must not point where a client chose."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """PAKTUM_TRUSTED_PROXIES as networks (the settings object has checked each entry)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def is_trusted(peer: str | None, trusted: Sequence[Network]) -> bool:
    if not peer or not trusted:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def forwarded(request: HTTPConnection) -> tuple[str | None, str | None]:
    """(proto, host) as our proxy forwarded them: RFC 7239 `Forwarded`, else X-Forwarded-Proto/-Host.

    Only the last entry counts: the one our own (trusted) proxy wrote; earlier ones came from further out.
    """
    standard = ",".join(request.headers.getlist("forwarded"))
    if standard.strip():
        pairs = {}
        for part in standard.rsplit(",", 1)[-1].split(";"):
            key, _, value = part.strip().partition("=")
            pairs[key.lower()] = value.strip().strip('"')
        return pairs.get("proto"), pairs.get("host")

    def last(name: str) -> str | None:
        value = ",".join(request.headers.getlist(name))
        return value.rsplit(",", 1)[-1].strip() or None

    return last("x-forwarded-proto"), last("x-forwarded-host")


def own_address(request: HTTPConnection, scheme: str) -> str:
    """host[:port] of the socket the request arrived on (the server's side of the connection)."""
    server = request.scope.get("server")
    if not server:
        return "localhost"
    host, port = server[0], server[1]
    host = f"[{host}]" if ":" in host else host
    return host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"


def request_base(request: HTTPConnection, public_url: str | None, trusted: Sequence[Network]) -> str:
    if public_url:
        return public_url.rstrip("/")
    scheme = request.scope.get("scheme", "http")
    if is_trusted(request.client.host if request.client else None, trusted):
        proto, host = forwarded(request)
        proto = proto.lower() if proto else None
        if proto in _DEFAULT_PORTS:
            scheme = proto
        if host and _HOST.match(host):
            return f"{scheme}://{host}"
    return f"{scheme}://{own_address(request, scheme)}"
