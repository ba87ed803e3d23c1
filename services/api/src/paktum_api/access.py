"""Private mode (PAKTUM_READ_TOKEN): who may read, signed expiring links and gallery sessions, and the guard.

One key signs both kinds of value, each under its own label so that one can never pass for the other; the key
is derived from the configured read tokens, so changing or removing a token ends every session and link made
under the old list. Signatures are imgproxy's scheme (HMAC-SHA256, URL-safe base64 without padding).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paktum_api.admin import admin_token_valid, presented_token, upload_token_valid
from paktum_api.imgproxy import sign_path
from paktum_api.links import networks, request_base
from paktum_common.log import log_event
from paktum_common.settings import Settings

log = logging.getLogger("paktum.api")

SESSION_COOKIE = "paktum_session"
SIGN_IN_PATH = "/signin"
SIGN_OUT_PATH = "/signout"
# Probes and the sign-in itself stay open; everything else that reads needs a token, a session or a signed link.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", SIGN_IN_PATH, SIGN_OUT_PATH})
SIGNED_PREFIXES = ("/images/", "/thumbnails/")  # what a signed link may open (what `<img>` loads)
GRAPHQL_PATH = "/query"
READ_METHODS = frozenset({"GET", "HEAD"})
# Reads sent as POST (their question is a body): search by image.
READ_POSTS = frozenset({"/api/similar"})
UPLOAD_STATUS_PREFIX = "/api/upload/"
LINK_LABEL = b"paktum-link:"
SESSION_LABEL = b"paktum-session:"


@dataclass(frozen=True)
class ReadAccess:
    """The read tokens and the key derived from them; None from `from_settings` when reads are public."""

    tokens: tuple[bytes, ...]
    key: bytes
    link_seconds: int
    session_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadAccess | None:
        tokens = tuple(t.get_secret_value().strip().encode("utf-8") for t in settings.read_token)
        tokens = tuple(t for t in tokens if t)
        if not tokens:
            return None
        key = hmac.new(b"paktum read access", b"\n".join(sorted(tokens)), hashlib.sha256).digest()
        log_event(log, logging.INFO, "private mode: every read needs a read token", tokens=len(tokens))
        return cls(tokens, key, settings.read_link_seconds, settings.read_session_seconds)

    def token_valid(self, settings: Settings, presented: str | None) -> bool:
        """A read token or the admin token, compared in constant time (every read token is compared)."""
        if not presented:
            return False
        given = presented.strip().encode("utf-8")
        matches = [hmac.compare_digest(token, given) for token in self.tokens]
        return any(matches) or admin_token_valid(settings, presented)

    # Signed links: `?exp=<unix seconds>&sig=<HMAC of path + exp>` for a path the api serves.

    def link_expiry(self, now: float | None = None) -> int:
        """The expiry a new link gets: at least link_seconds ahead, rounded up to a quarter of it, so that the
        links of one image stay the same for a while and a browser's cache keeps working across answers."""
        step = max(1, self.link_seconds // 4)
        ahead = int(now if now is not None else time.time()) + self.link_seconds
        return -(-ahead // step) * step

    def link_signature(self, path: str, expires: int) -> str:
        return sign_path(self.key, LINK_LABEL, f"{path}?exp={expires}")

    def sign_link(self, path: str, expires: int | None = None) -> str:
        """`path` with its signature, as the query string a served link carries."""
        exp = self.link_expiry() if expires is None else expires
        return f"{path}?{urlencode({'exp': exp, 'sig': self.link_signature(path, exp)})}"

    def link_problem(self, path: str, query: dict[str, str]) -> str | None:
        """Why a signed link does not open `path` (None: it does); only file and thumbnail paths take links."""
        raw_exp, sig = query.get("exp", ""), query.get("sig", "")
        if not path.startswith(SIGNED_PREFIXES) or not raw_exp.isdigit() or len(raw_exp) > 12:
            return "this link's signature is not valid"
        expected = self.link_signature(path, int(raw_exp))
        if not hmac.compare_digest(expected.encode("ascii"), sig.encode("utf-8", "replace")):
            return "this link's signature is not valid"
        if int(raw_exp) < time.time():
            return "this link has expired: load the page again for a fresh one"
        return None

    # Sessions: the cookie holds `<expiry>.<HMAC of expiry>`, never the token.

    def new_session(self, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + self.session_seconds
        return f"{expires}.{sign_path(self.key, SESSION_LABEL, str(expires))}"

    def session_valid(self, value: str | None) -> bool:
        raw_exp, _, sig = (value or "").partition(".")
        if not raw_exp.isdigit() or len(raw_exp) > 12:
            return False
        expected = sign_path(self.key, SESSION_LABEL, raw_exp)
        return (
            hmac.compare_digest(expected.encode("ascii"), sig.encode("utf-8", "replace"))
            and int(raw_exp) >= time.time()
        )


def is_https(settings: Settings, connection: HTTPConnection) -> bool:
    """Whether the client reached us over https, decided as links are built (paktum_api.links): PAKTUM_PUBLIC_URL,
    else what a trusted proxy forwarded, else the connection itself."""
    base = request_base(connection, settings.public_url, networks(settings.trusted_proxies))
    return base.lower().startswith("https:")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never `//host` or a scheme), else the gallery."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(c < " " for c in target):
        return "/"
    return target


class ReadGuard:
    """ASGI middleware: in private mode, a read without a valid token, session or signed link is refused."""

    def __init__(self, app: ASGIApp, settings: Settings, access: ReadAccess) -> None:
        self.app = app
        self.settings = settings
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope.get("method", "GET")
        guarded = scope["type"] == "websocket" or path in (GRAPHQL_PATH, *READ_POSTS) or method in READ_METHODS
        if path in OPEN_PATHS or not guarded:
            # Writes (admin routes, edits, uploads) check their own tokens; OPTIONS is a CORS preflight.
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if path.startswith(UPLOAD_STATUS_PREFIX) and upload_token_valid(self.settings, presented_token(connection)):
            await self.app(scope, receive, _private_cache(send))  # an uploader may ask how its upload went
            return
        if self.access.token_valid(self.settings, presented_token(connection)) or self.access.session_valid(
            connection.cookies.get(SESSION_COOKIE)
        ):
            await self.app(scope, receive, _private_cache(send))
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        problem = self.access.link_problem(path, query) if "sig" in query else "no signature"
        if problem is None:
            await self.app(scope, receive, _private_cache(send))
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await self._refuse(connection, method, path, problem if "sig" in query else None, send)

    async def _refuse(self, connection: HTTPConnection, method: str, path: str, link: str | None, send: Send) -> None:
        log_event(log, logging.DEBUG, "read refused", path=path, reason=link or "no valid token or session")
        if link is not None:
            await _send(send, 403, {"error": link})
        elif method in READ_METHODS and (path == "/" or "text/html" in connection.headers.get("accept", "")):
            # A person in a browser: to the sign-in page, and back here afterwards.
            target = path + (f"?{connection.url.query}" if connection.url.query else "")
            location = f"{SIGN_IN_PATH}?{urlencode({'next': target})}"
            await _send(send, 303, None, [(b"location", location.encode("latin-1"))])
        elif path == GRAPHQL_PATH:
            message = "private mode: sign in, or send Authorization: Bearer <read token>"
            await _send(send, 401, {"data": None, "errors": [{"message": message}]}, _challenge())
        else:
            message = "private mode: this needs Authorization: Bearer <read token>, a gallery sign-in or a signed link"
            await _send(send, 401, {"error": message}, _challenge())


def _challenge() -> list[tuple[bytes, bytes]]:
    return [(b"www-authenticate", b'Bearer realm="paktum"')]


async def _send(send: Send, status: int, body: object, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode("utf-8") if body is not None else b""
    all_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode("ascii")),
        (b"cache-control", b"no-store"),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": payload})


def _private_cache(send: Send) -> Send:
    """What only a signed-in reader may see must not sit in a shared cache: `public` becomes `private`."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (name, value.replace(b"public", b"private")) if name.lower() == b"cache-control" else (name, value)
                for name, value in message.get("headers", [])
            ]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped
