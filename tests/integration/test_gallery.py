"""The gallery at `/`: its HTML over real HTTP, then the page running in headless Chromium against the real api."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from paktum_common.settings import Settings
from tests.integration.apiserver import serve
from tests.integration.browser import Browser, chromium_binary
from tests.integration.gallery_data import fill
from tests.integration.pipeline import Pipeline


@pytest.fixture
def api(indexed: Settings) -> Iterator[httpx.Client]:
    with serve(indexed) as client:
        yield client


@pytest.fixture
async def filled(tmp_path: Path, pipeline: Pipeline) -> Pipeline:
    """An index of its own, for a test that changes it."""
    return await fill(tmp_path / "in", pipeline)


class Elements(HTMLParser):
    """Every element as (tag, attributes), and the text, of an HTML document."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def test_gallery_page_is_served_without_a_build_step(api: httpx.Client) -> None:
    response = api.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = Elements(response.text)
    assert page.find("input", id="q", type="search")
    assert page.find("button", id="random") and page.find("div", id="grid") and page.find("section", id="detail")
    assert page.find("a", href="/query") and page.find("a", href="/docs")
    scripts = page.find("script")
    assert scripts and all("src" not in script for script in scripts)  # inline only: no bundle to build or fetch
    assert 'fetch("/query"' in response.text


def rendered(url: str, tmp_path: Path) -> Elements:
    """The DOM after the page's scripts ran and its requests to the api finished, as Chromium dumps it."""
    args = [
        chromium_binary(),
        "--headless",
        "--no-sandbox",  # tests run as root in CI, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,900",
        "--virtual-time-budget=20000",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return Elements(result.stdout)


def test_browser_search_grid_with_infinite_scroll(api: httpx.Client, tmp_path: Path) -> None:
    # Pages of 4: the 9 animals only all appear if scrolling (the sentinel in view) keeps loading pages.
    page = rendered(f"{api.base_url}/?page_size=4#/search/animal", tmp_path)
    tiles = [a for a in page.find("a") if a.get("data-id")]
    assert len(tiles) == 9 and len({a["data-id"] for a in tiles}) == 9
    assert "9 images" in "".join(page.text)
    thumbnails = [img["src"] for img in page.find("img")]
    assert len(thumbnails) == 9 and all(api.get(src).status_code == 200 for src in thumbnails)
    cats = rendered(f"{api.base_url}/#/search/cat%20rating:safe", tmp_path)
    assert len([a for a in cats.find("a") if a.get("data-id")]) == 6


def test_browser_detail_view(api: httpx.Client, tmp_path: Path) -> None:
    image = api.get("/api/search", params={"query": "dog", "limit": 1}).json()["results"][0]
    page = rendered(f"{api.base_url}/#/image/{image['ID']}", tmp_path)
    text = " ".join(page.text)
    assert page.find("img", src=image["URL"])
    assert {a["href"] for a in page.find("a") if a.get("href", "").startswith("#/search/")} == {
        "#/search/dog",
        "#/search/animal",
    }
    assert page.find("dd", **{"data-field": "rating"}) and "general" in text
    assert re.search(r"300 × 200, [\d.]+ (B|KiB)", text)
    assert "Related (0)" in text and "No variants of this image." in text


def test_browser_random_image(api: httpx.Client, tmp_path: Path) -> None:
    page = rendered(f"{api.base_url}/#/random", tmp_path)
    ids = {r["ID"] for r in api.get("/api/search", params={"query": "animal", "limit": 50}).json()["results"]}
    [shown] = [img["src"] for img in page.find("img")]
    assert shown.rpartition("/images/")[2].partition(".")[0] in ids
    assert "Related (0)" in " ".join(page.text)


def test_browser_shows_a_bad_query_as_an_error(api: httpx.Client, tmp_path: Path) -> None:
    page = rendered(f"{api.base_url}/#/search/cat%20rating:nsfw", tmp_path)
    assert page.find("div", id="status", **{"class": "error"})
    assert "unknown rating 'nsfw'" in " ".join(page.text)


async def test_browser_links_only_web_source_pages(filled: Pipeline, tmp_path: Path) -> None:
    with serve(filled.settings) as api:
        await _links_only_web_source_pages(filled, api, tmp_path)


async def _links_only_web_source_pages(filled: Pipeline, api: httpx.Client, tmp_path: Path) -> None:
    # A scraped post's page URL is outside data: a javascript: URL must never become a link.
    [original] = (await filled.search.get_documents([r["ID"] for r in _dogs(api)][:1])).values()
    hostile = original.model_copy(update={"Source": "evil", "SourceURL": "javascript:alert(document.domain)"})
    await filled.search.add_documents([hostile])
    page = rendered(f"{api.base_url}/#/image/{original.ID}", tmp_path)
    assert "Related (0)" in " ".join(page.text)
    assert not [a for a in page.find("a") if "javascript" in a.get("href", "").lower()]
    friendly = original.model_copy(update={"Source": "gelbooru", "SourceURL": "https://gelbooru.example/post/1"})
    await filled.search.add_documents([friendly])
    page = rendered(f"{api.base_url}/#/image/{original.ID}", tmp_path)
    assert page.find("a", href="https://gelbooru.example/post/1", rel="noreferrer")


def _dogs(api: httpx.Client) -> list[dict[str, str]]:
    results: list[dict[str, str]] = api.get("/api/search", params={"query": "dog", "limit": 3}).json()["results"]
    return results


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    chromium = Browser(tmp_path / "profile")
    yield chromium
    chromium.close()


def test_browser_autocomplete_search_and_random_button(api: httpx.Client, browser: Browser) -> None:
    """A person's path through the page: type, pick a suggestion, search, open an image, press Random."""
    browser.open(f"{api.base_url}/")
    browser.wait_for("document.querySelectorAll('#grid a').length === 9")
    browser.evaluate("const q = document.getElementById('q'); q.focus(); q.value = 'animal -Ca'; "
                     "q.dispatchEvent(new Event('input', {bubbles: true}))")  # fmt: skip
    suggestions = browser.wait_for(
        "[...document.querySelectorAll('#suggestions li')].map(li => li.textContent).join('|') || null"
    )
    assert suggestions == "cat6|cat_ears6"  # most used first, each with its count
    key = "document.getElementById('q').dispatchEvent(new KeyboardEvent('keydown', {key: '%s', bubbles: true}))"
    browser.evaluate(key % "ArrowDown")
    browser.evaluate(key % "ArrowDown")
    browser.evaluate(key % "Enter")
    assert browser.evaluate("document.getElementById('q').value") == "animal -cat_ears "
    assert browser.evaluate("document.querySelectorAll('#suggestions li').length") == 0
    browser.evaluate("document.querySelector('#search button[type=submit]').click()")
    browser.wait_for("location.hash === '#/search/animal%20-cat_ears'")
    browser.wait_for("document.querySelectorAll('#grid a').length === 3")
    assert browser.evaluate("document.getElementById('status').textContent") == "3 images"

    browser.evaluate("document.querySelector('#grid a').click()")
    browser.wait_for("!document.getElementById('detail').hidden && !!document.querySelector('#detail .full img')")
    assert browser.evaluate(
        "[...document.querySelectorAll('#detail .tags a')].map(a => a.textContent).sort().join()"
    ) == ("animal,dog")
    shown = browser.evaluate("location.hash")
    for _ in range(5):  # Random picks uniformly among 9: five presses all landing on the shown one is unlikely
        browser.evaluate("document.getElementById('random').click()")
        browser.wait_for("location.hash.startsWith('#/image/') && !!document.querySelector('#detail .full img')")
        if browser.evaluate("location.hash") != shown:
            break
    assert browser.evaluate("location.hash") != shown
    browser.wait_for("document.querySelector('#detail .full img').complete")
    assert browser.evaluate("document.querySelector('#detail .full img').naturalWidth") in (640, 300)


async def test_browser_find_similar_and_a_dropped_picture(pipeline: Pipeline, tmp_path: Path, browser: Browser) -> None:
    """Related tiles say how a copy is turned; "Find similar" and a picture dropped on the page list the nearest."""
    import hashlib

    from PIL import Image

    from paktum_scraper.local import ImportReport, local_posts
    from tests.imagefiles import encode, picture

    folder = tmp_path / "turned"
    folder.mkdir()
    files = {
        "original.jpg": encode(picture(80), "JPEG", quality=90),
        "mirror.jpg": encode(picture(80).transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG", quality=85),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    await pipeline.queue.publish_posts(local_posts(folder, ["cat"], None, ImportReport()))
    await pipeline.drain()
    original, mirror = (hashlib.md5(files[name]).hexdigest() for name in ("original.jpg", "mirror.jpg"))
    with serve(pipeline.settings) as api:
        browser.open(f"{api.base_url}/#/image/{original}")
        browser.wait_for("!!document.querySelector('#detail .related a')")
        assert browser.evaluate("document.querySelector('#detail .related a span').textContent").endswith("mirror")
        browser.evaluate("document.getElementById('find-similar').click()")
        browser.wait_for("!document.getElementById('grid').hidden && document.querySelectorAll('#grid a').length > 0")
        assert browser.evaluate("[...document.querySelectorAll('#grid a')].map(a => a.dataset.id).join()") == mirror
        # A picture dropped anywhere on the page: the mirror's file, fetched and dropped as a File.
        browser.evaluate(
            f"fetch('/images/{mirror}.jpg').then(r => r.blob()).then(blob => {{"
            "  const data = new DataTransfer(); data.items.add(new File([blob], 'm.jpg', {type: 'image/jpeg'}));"
            "  document.getElementById('grid').replaceChildren();"
            "  const drop = new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true});"
            "  document.body.dispatchEvent(drop);"
            "})"
        )
        browser.wait_for("document.getElementById('status').textContent.includes('similar to the picture')")
        shown = browser.evaluate("[...document.querySelectorAll('#grid a')].map(a => a.dataset.id + ' ' + "
                                 "a.querySelector('span').textContent).join('|')")  # fmt: skip
        assert (
            shown
            == f"{mirror} 0|{original} "
            + browser.evaluate(
                "document.querySelectorAll('#grid a')[1].querySelector('span').textContent.split(' ')[0]"
            )
            + " mirror"
        )
