"""The guarded download of a file from the web: public addresses only (every DNS answer and every redirect hop
checked), a size cap, a stall timeout. The hasher fetches posts' files with it, the api the picture of a search
by image."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from urllib.parse import urljoin, urlsplit

import httpx

from paktum_common.errors import BadPostError, SourceReadError, TransientError
from paktum_common.settings import Settings

MAX_REDIRECTS = 5
USER_AGENT = "Paktum (self-hosted image server)"


async def download(
    file_url: str,
    settings: Settings,
    max_bytes: int | None = None,
    user_agent: str = USER_AGENT,
    limit_name: str = "PAKTUM_MAX_FILE_BYTES",
) -> bytes:
    """Stream `file_url` into memory, at most `max_bytes` (PAKTUM_MAX_FILE_BYTES by default), following
    redirects by hand so every hop is checked; the connection goes to the address we checked, not a second
    DNS answer."""
    limit = settings.max_file_bytes if max_bytes is None else max_bytes
    timeout = httpx.Timeout(settings.download_timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, headers={"User-Agent": user_agent}, verify=_tls()) as http:
        url = file_url
        for _ in range(MAX_REDIRECTS + 1):
            target = urlsplit(url)
            if target.scheme not in ("http", "https") or not target.hostname:
                raise BadPostError(f"refused file URL (only http and https): {url}")
            port = target.port or (443 if target.scheme == "https" else 80)
            addresses = await resolve(target.hostname, port, settings.download_allow_private)
            response = await _send(http, url, target.hostname, target.netloc.rpartition("@")[2], addresses)
            try:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                _check_status(response.status_code, url)
                return await _read_body(response, limit, url, limit_name)
            finally:
                await response.aclose()
        raise SourceReadError(f"more than {MAX_REDIRECTS} redirects: {file_url}")


async def _send(http: httpx.AsyncClient, url: str, host: str, netloc: str, addresses: list[str]) -> httpx.Response:
    """GET `url` from the first checked address that accepts a connection. The URL names the
    address; the Host header and TLS (SNI and certificate check) still name the host."""
    failure = ""
    for address in addresses:
        request = http.build_request(
            "GET", httpx.URL(url).copy_with(host=address), headers={"Host": netloc},
            extensions={"sni_hostname": host},
        )  # fmt: skip
        try:
            return await http.send(request, stream=True)
        except httpx.ConnectError as exc:
            failure = f"cannot connect to {address}: {exc or type(exc).__name__}"
        except httpx.TimeoutException as exc:
            raise TransientError(f"download timed out: {url}") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"download failed: {exc or type(exc).__name__}: {url}") from exc
    raise TransientError(f"download failed: {failure}: {url}")


@functools.cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle costs milliseconds of CPU: once per process, not once per download.
    return httpx.create_ssl_context()


async def resolve(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses of `host`, all public (unless allowed otherwise): every answer is checked,
    so a name with one public and one internal address is refused."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TransientError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TransientError(f"{host} has no address")
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.partition("%")[0])
            if not ip.is_global or ip.is_multicast:
                raise BadPostError(
                    f"refused download from {host}: it resolves to the non-public address {address} "
                    "(PAKTUM_DOWNLOAD_ALLOW_PRIVATE allows it)"
                )
    return addresses


def _check_status(status: int, url: str) -> None:
    if status == 429 or status >= 500:
        raise TransientError(f"download answered HTTP {status}: {url}")
    if status >= 400:
        raise SourceReadError(f"download answered HTTP {status}: {url}")
    if status != 200:
        raise SourceReadError(f"download answered HTTP {status} instead of the file: {url}")


async def _read_body(response: httpx.Response, max_bytes: int, url: str, limit_name: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SourceReadError(f"{url} is {declared} bytes, more than {max_bytes} ({limit_name})")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise SourceReadError(f"{url} is larger than {max_bytes} bytes ({limit_name})")
            chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise TransientError(f"download stalled: {url}") from exc
    except httpx.TransportError as exc:
        # A connection closed before Content-Length bytes arrived: a truncated transfer, worth another try.
        raise TransientError(f"download cut short after {size} bytes: {exc or type(exc).__name__}: {url}") from exc
    return b"".join(chunks)
