"""Private mode (PAKTUM_READ_TOKEN) over real HTTP: every read refused without a token, allowed with one, with a
gallery sign-in, or (files and thumbnails only) with a signed link that expires; probes stay open."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from paktum_api.access import SESSION_COOKIE, ReadAccess
from paktum_common.settings import Settings
from paktum_common.store import SMALL
from tests.integration.apiserver import serve
from tests.integration.browser import Browser

READ_TOKEN = "reader-token-for-tests-0123456789"
OTHER_TOKEN = "second-reader-token-9876543210"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"
GRAPHQL = {
    "query": '{ imageSearch(query: "animal", limit: 50) { Total Images { ID Url ThumbnailUrl ThumbnailSrcset } } }'
}


def private(settings: Settings, **changes: object) -> Settings:
    update = {"read_token": [SecretStr(READ_TOKEN), SecretStr(OTHER_TOKEN)], "admin_token": SecretStr(ADMIN_TOKEN)}
    return settings.model_copy(update={**update, **changes})


@pytest.fixture(scope="module")
def api(indexed: Settings) -> Iterator[httpx.Client]:
    with serve(private(indexed)) as client:
        yield client


@pytest.fixture(scope="module")
def image(api: httpx.Client) -> dict[str, str]:
    found: dict[str, str] = api.get(
        "/api/search", params={"query": "dog", "limit": 1}, headers={"Authorization": f"Bearer {READ_TOKEN}"}
    ).json()["results"][0]
    return found


def reads(image: dict[str, str]) -> list[tuple[str, str, dict[str, object] | None]]:
    """Every kind of read the api serves: (method, path, JSON body)."""
    thumbnail = urlsplit(image["ThumbnailURL"]).path.rpartition("/")[2]
    return [
        ("GET", "/api/search?query=animal", None),
        ("GET", f"/api/image/{image['ID']}", None),
        ("GET", f"/api/image/{image['ID']}/related", None),
        ("POST", "/query", GRAPHQL),
        ("GET", "/query?query=%7B%20tags(prefix%3A%20%22a%22)%20%7B%20Name%20%7D%20%7D", None),
        ("GET", f"/images/{image['Filename']}", None),
        ("HEAD", f"/images/{image['Filename']}", None),
        ("GET", f"/thumbnails/{thumbnail}", None),
        ("GET", f"/thumbnails/{SMALL}/{thumbnail}", None),
        ("GET", "/openapi.json", None),
        ("GET", "/", None),
    ]


def send(client: httpx.Client, method: str, path: str, body: object, **kwargs: object) -> httpx.Response:
    return client.request(method, path, json=body, **kwargs)  # type: ignore[arg-type]


def test_every_read_is_refused_without_a_token_and_probes_stay_open(api: httpx.Client, image: dict[str, str]) -> None:
    for method, path, body in reads(image):
        response = send(api, method, path, body)
        if path == "/":  # a person in a browser goes to the sign-in page, and comes back afterwards
            assert response.status_code == 303, path
            assert response.headers["location"] == "/signin?next=%2F"
            continue
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["www-authenticate"].startswith("Bearer")
        if method == "HEAD":
            continue
        if path.startswith("/query"):
            assert response.json()["data"] is None
            assert "sign in" in response.json()["errors"][0]["message"]
        else:
            assert "Authorization: Bearer" in response.json()["error"]
    wrong = api.get("/api/search", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert api.get("/api/search", headers={"Authorization": f"Bearer {READ_TOKEN}x"}).status_code == 401
    # A browser asking for a page (Accept: text/html) is sent to sign in rather than shown JSON.
    page = api.get("/docs", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/signin?next=%2Fdocs"
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}
    assert "paktum_api_requests_total" in api.get("/metrics").text


@pytest.mark.parametrize("token", [READ_TOKEN, OTHER_TOKEN, ADMIN_TOKEN], ids=["read", "second-read", "admin"])
def test_every_read_is_allowed_with_a_bearer_token(api: httpx.Client, image: dict[str, str], token: str) -> None:
    for method, path, body in reads(image):
        response = send(api, method, path, body, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, (method, path, response.text[:200])
    search = api.get(
        "/api/search", params={"query": "animal", "limit": 50}, headers={"Authorization": f"Bearer {token}"}
    )
    assert search.json()["total_hits"] == 9
    graphql = api.post("/query", json=GRAPHQL, headers={"Authorization": f"Bearer {token}"}).json()
    assert graphql["data"]["imageSearch"]["Total"] == 9
    # What only a signed-in reader may see is never stored by a shared cache.
    served = api.get(f"/images/{image['Filename']}", headers={"Authorization": f"Bearer {token}"})
    assert served.headers["cache-control"].startswith("private")


def sign_in(client: httpx.Client, token: str, next_path: str = "/") -> httpx.Response:
    """A sign-in from a client of its own, so that the shared client never carries the session."""
    with httpx.Client(base_url=client.base_url) as fresh:
        return fresh.post("/signin", data={"token": token, "next": next_path})


def test_the_gallery_sign_in_sets_a_signed_session_cookie_that_opens_every_read(
    api: httpx.Client, image: dict[str, str]
) -> None:
    assert api.get("/signin", params={"next": "/#/search/dog"}).status_code == 200
    refused = sign_in(api, "not-the-token")
    assert refused.status_code == 401 and "not a read token" in refused.text
    assert "set-cookie" not in refused.headers
    done = sign_in(api, READ_TOKEN, "/#/search/dog")
    assert done.status_code == 303 and done.headers["location"] == "/#/search/dog"
    cookie = done.headers["set-cookie"]
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert "secure" not in attributes  # plain http on loopback: a Secure cookie would never come back
    value = done.cookies[SESSION_COOKIE]
    assert READ_TOKEN not in value and READ_TOKEN not in cookie
    with httpx.Client(base_url=api.base_url) as browser:
        browser.post("/signin", data={"token": READ_TOKEN})
        assert browser.cookies[SESSION_COOKIE]
        for method, path, body in reads(image):
            response = send(browser, method, path, body)
            assert response.status_code == 200, (method, path, response.text[:200])
        assert 'id="sign-out-reader"' in browser.get("/").text
        out = browser.get("/signout")
        assert out.status_code == 303 and out.headers["location"] == "/signin"
        assert SESSION_COOKIE not in browser.cookies  # cleared: Max-Age=0
        assert browser.get("/api/search").status_code == 401
    # A forged, altered or expired session opens nothing.
    access = ReadAccess.from_settings(private(Settings()))
    assert access is not None
    expires, _, sig = value.partition(".")
    for forged in (
        f"{int(expires) + 1000}.{sig}",
        f"{expires}.{sig[:-1]}{'B' if sig.endswith('A') else 'A'}",  # one character changed
        access.new_session(now=time.time() - 10**7),
    ):
        assert api.get("/api/search", headers={"Cookie": f"{SESSION_COOKIE}={forged}"}).status_code == 401, forged


def test_sign_in_only_returns_to_this_site(api: httpx.Client) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        assert sign_in(api, READ_TOKEN, target).headers["location"] == "/"


def test_the_cookie_is_secure_when_the_api_is_reached_over_https(indexed: Settings) -> None:
    with serve(private(indexed, public_url="https://paktum.example")) as client:
        attributes = [part.strip().lower() for part in sign_in(client, READ_TOKEN).headers["set-cookie"].split(";")]
        assert "secure" in attributes


def signed(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_answers_carry_signed_links_that_open_files_without_a_token(api: httpx.Client, image: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {READ_TOKEN}"}
    [found] = (
        api.post(
            "/query",
            json={"query": f'{{ image(ID: "{image["ID"]}") {{ Url ThumbnailUrl ThumbnailSrcset }} }}'},
            headers=auth,
        )
        .json()["data"]
        .values()
    )
    links = [image["URL"], image["ThumbnailURL"], found["Url"], found["ThumbnailUrl"]]
    links += [part.strip().rpartition(" ")[0] for part in found["ThumbnailSrcset"].split(",")]
    assert len(links) == 6
    for link in links:
        path, query = signed(link)
        assert set(query) == {"exp", "sig"} and int(query["exp"]) > time.time() + 3000, link
        opened = httpx.get(link)  # no token, no cookie: what an <img> tag does
        assert opened.status_code == 200 and opened.content[:3] in (b"\xff\xd8\xff", b"\x89PN", b"GIF"), link
        assert opened.headers["cache-control"].startswith("private")
        # The signature covers the path and the expiry: neither can be changed.
        assert api.get(path, params={**query, "exp": str(int(query["exp"]) + 1)}).status_code == 403
        assert api.get(path, params={**query, "sig": query["sig"][::-1]}).status_code == 403
    image_query = signed(image["URL"])[1]
    thumbnail_path = signed(image["ThumbnailURL"])[0]
    moved = api.get(thumbnail_path, params=image_query)
    assert moved.status_code == 403 and "not valid" in moved.json()["error"]
    # A link opens files only, never the API.
    assert api.get("/api/search", params=image_query).status_code == 403


def test_a_signed_link_expires(api: httpx.Client, image: dict[str, str]) -> None:
    access = ReadAccess.from_settings(private(Settings()))
    assert access is not None
    path = f"/images/{image['Filename']}"
    assert api.get(access.sign_link(path, expires=int(time.time()) + 60)).status_code == 200
    expired = api.get(access.sign_link(path, expires=int(time.time()) - 1))
    assert expired.status_code == 403 and "expired" in expired.json()["error"]
    # The same link under another read-token list (a token rotated away) is void.
    other = ReadAccess.from_settings(Settings(read_token=[SecretStr("some-other-token")]))
    assert other is not None
    assert api.get(other.sign_link(path)).status_code == 403


def test_the_browser_signs_in_sees_the_gallery_and_signs_out(api: httpx.Client, tmp_path: Path) -> None:
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(f"{api.base_url}/#/search/animal")
        browser.wait_for("location.pathname === '/signin' && !!document.getElementById('token')")
        browser.evaluate(
            "document.getElementById('token').value = 'wrong'; document.getElementById('sign-in').submit()"
        )
        browser.wait_for("document.getElementById('error') && document.getElementById('error').textContent.length > 0")
        assert "not a read token" in browser.evaluate("document.getElementById('error').textContent")
        browser.evaluate(
            f"document.getElementById('token').value = '{READ_TOKEN}'; document.getElementById('sign-in').submit()"
        )
        browser.wait_for("location.pathname === '/' && document.querySelectorAll('#grid a').length === 9")
        assert browser.evaluate("location.hash") == "#/search/animal"
        # Every thumbnail loaded: the signed links work in <img> tags.
        browser.wait_for(
            "[...document.querySelectorAll('#grid img')].every(img => img.complete && img.naturalWidth > 0)"
        )
        assert browser.evaluate("document.cookie") == ""  # HttpOnly: the page's scripts cannot read the session
        # The session ends while the page is open: its next request takes the reader to sign in, and back.
        browser.call("Network.clearBrowserCookies")
        browser.evaluate("location.hash = '#/search/dog'")
        browser.wait_for("location.pathname === '/signin' && !!document.getElementById('token')")
        browser.evaluate(
            f"document.getElementById('token').value = '{READ_TOKEN}'; document.getElementById('sign-in').submit()"
        )
        browser.wait_for("location.pathname === '/' && document.querySelectorAll('#grid a').length === 3")
        assert browser.evaluate("location.hash") == "#/search/dog"
        browser.evaluate("document.getElementById('sign-out-reader').click()")
        browser.wait_for("location.pathname === '/signin'")
        browser.open(f"{api.base_url}/")
        browser.wait_for("location.pathname === '/signin' && !!document.getElementById('token')")
    finally:
        browser.close()


def test_settings_take_one_read_token_or_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAKTUM_READ_TOKEN", "first-token, second-token")
    assert [t.get_secret_value() for t in Settings().read_token] == ["first-token", "second-token"]
    monkeypatch.setenv("PAKTUM_READ_TOKEN", "")
    assert Settings().read_token == [] and ReadAccess.from_settings(Settings()) is None


def test_search_by_image_is_a_read(api: httpx.Client, image: dict[str, str]) -> None:
    picture = api.get(f"/images/{image['Filename']}", headers={"Authorization": f"Bearer {READ_TOKEN}"}).content
    refused = api.post("/api/similar", content=picture, headers={"content-type": "image/jpeg"})
    assert refused.status_code == 401 and "Authorization: Bearer" in refused.json()["error"]
    allowed = api.post(
        "/api/similar", content=picture, headers={"content-type": "image/jpeg", "Authorization": f"Bearer {READ_TOKEN}"}
    )
    assert allowed.status_code == 200 and allowed.json()["results"][0]["ID"] == image["ID"]
