"""The gallery in headless Chromium against the real api: an admin signs in with the token field and edits tags
and the rating inline; the grid asks for the smaller thumbnail through srcset."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from paktum_common.settings import Settings
from tests.integration.apiserver import serve
from tests.integration.browser import Browser
from tests.integration.gallery_data import fill
from tests.integration.pipeline import Pipeline

TOKEN = "gallery-admin-token"


@pytest.fixture
async def filled(tmp_path: Path, pipeline: Pipeline) -> Pipeline:
    return await fill(tmp_path / "in", pipeline)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    chromium = Browser(tmp_path / "profile")
    yield chromium
    chromium.close()


def shown_tags(browser: Browser) -> str:
    return str(browser.evaluate("[...document.querySelectorAll('#detail .tags a')].map(a => a.textContent).join()"))


def ids(api: httpx.Client, query: str) -> set[str]:
    return {r["ID"] for r in api.get("/api/search", params={"query": query, "limit": 50}).json()["results"]}


def test_an_admin_edits_tags_and_rating_inline(filled: Pipeline, browser: Browser) -> None:
    with serve(filled.settings.model_copy(update={"admin_token": SecretStr(TOKEN)})) as api:
        dog = sorted(ids(api, "dog"))[0]
        browser.open(f"{api.base_url}/#/image/{dog}")
        browser.wait_for("!!document.querySelector('#detail .tags a')")
        # Not signed in: no editing controls.
        assert browser.evaluate("document.querySelectorAll('#detail .tags button, #edit, #rating').length") == 0
        # A wrong token is refused and not kept.
        browser.evaluate("document.getElementById('token').value = 'wrong'; "
                         "document.getElementById('sign-in').click()")  # fmt: skip
        browser.wait_for("document.getElementById('admin-status').textContent.includes('admin token')")
        assert browser.evaluate("localStorage.getItem('paktum.adminToken')") is None
        browser.evaluate(f"document.getElementById('token').value = '{TOKEN}'; "
                         "document.getElementById('sign-in').click()")  # fmt: skip
        browser.wait_for("document.getElementById('admin-status').textContent === 'Signed in as admin'")
        browser.wait_for("!!document.querySelector('#detail .tags button.remove[data-tag=dog]')")
        browser.evaluate("document.querySelector('#detail .tags button.remove[data-tag=dog]').click()")
        browser.wait_for("document.getElementById('status').textContent === 'Saved'")
        assert shown_tags(browser) == "animal"
        browser.evaluate("document.getElementById('add-tags').value = 'Good_Boy  puppy'; "
                         "document.querySelector('#edit button').click()")  # fmt: skip
        browser.wait_for("[...document.querySelectorAll('#detail .tags a')].length === 3")
        assert shown_tags(browser) == "animal,good_boy,puppy"
        browser.evaluate("const r = document.getElementById('rating'); r.value = 'explicit'; "
                         "r.dispatchEvent(new Event('change'))")  # fmt: skip
        browser.wait_for("document.getElementById('rating').value === 'explicit' && "
                         "document.getElementById('status').textContent === 'Saved'")  # fmt: skip
        # Found under the new tag only, through the api as through the page; the sign-in lasts a reload.
        assert ids(api, "good_boy rating:explicit") == {dog} and dog not in ids(api, "dog")
        browser.open(f"{api.base_url}/#/search/good_boy")
        browser.wait_for("document.querySelectorAll('#grid a').length === 1")
        assert browser.evaluate("document.querySelector('#grid a').dataset.id") == dog
        assert browser.wait_for("document.getElementById('admin-status').textContent") == "Signed in as admin"
        browser.evaluate("document.getElementById('sign-out').click()")
        browser.wait_for("localStorage.getItem('paktum.adminToken') === null")


def test_the_grid_uses_the_smaller_thumbnail_through_srcset(indexed: Settings, browser: Browser) -> None:
    with serve(indexed) as api:
        browser.open(f"{api.base_url}/#/search/animal")
        browser.wait_for("document.querySelectorAll('#grid img').length === 9")
        browser.wait_for("[...document.querySelectorAll('#grid img')].every(i => i.complete && i.currentSrc)")
        chosen = browser.evaluate("[...document.querySelectorAll('#grid img')].map(i => i.currentSrc)")
        assert all("/thumbnails/small/" in src for src in chosen), chosen
        for src in chosen:
            small = Image.open(io.BytesIO(api.get(src).content))
            assert max(small.size) == 240
