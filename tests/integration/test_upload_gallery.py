"""The gallery's upload (admin): a picture dropped on the page in headless Chromium, with tags, goes through the
real api and the real hasher; its outcome is listed and it is found under its tags."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.imagefiles import good_images
from tests.integration.apiserver import serve
from tests.integration.browser import Browser
from tests.integration.pipeline import Pipeline

TOKEN = "gallery-upload-admin-token"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    chromium = Browser(tmp_path / "profile")
    yield chromium
    chromium.close()


DROP = """(() => {
  const bytes = Uint8Array.from(atob("%s"), c => c.charCodeAt(0));
  const files = new DataTransfer();
  files.items.add(new File([bytes], "dropped.jpg", { type: "image/jpeg" }));
  document.getElementById("upload-tags").value = "Dropped_Picture sunset";
  document.dispatchEvent(new DragEvent("drop", { dataTransfer: files, bubbles: true, cancelable: true }));
})()"""


async def test_a_dropped_picture_is_uploaded_and_found(pipeline: Pipeline, browser: Browser, tmp_path: Path) -> None:
    picture = good_images(tmp_path / "pictures", 1)[0].read_bytes()
    md5 = hashlib.md5(picture).hexdigest()
    with serve(pipeline.settings.model_copy(update={"admin_token": SecretStr(TOKEN)})) as api:
        browser.open(f"{api.base_url}/")
        browser.wait_for("!!document.getElementById('upload')")
        assert browser.evaluate("document.getElementById('upload').hidden") is True  # not signed in
        browser.evaluate(f"document.getElementById('token').value = '{TOKEN}'; "
                         "document.getElementById('sign-in').click()")  # fmt: skip
        browser.wait_for("document.getElementById('admin-status').textContent === 'Signed in as admin'")
        assert browser.evaluate("document.getElementById('upload').hidden") is False
        await pipeline.drain()  # a hasher has just read the stream: the api waits for it
        browser.evaluate(DROP % base64.b64encode(picture).decode("ascii"))
        done = "document.querySelectorAll('#upload-results li').length === 1"
        while not browser.evaluate(done):  # the hasher runs here while the upload waits
            await pipeline.drain()
            await asyncio.sleep(0.05)
        assert browser.evaluate("document.querySelector('#upload-results li').textContent") == "dropped.jpg: indexed"
        assert browser.evaluate("document.querySelector('#upload-results li a').getAttribute('href')") == (
            f"#/image/{md5}"
        )
        # Signed in, a drop is an upload only, never also a search by image; the grid shows the new picture.
        browser.wait_for(f"!!document.querySelector('#grid a[data-id=\"{md5}\"]')")
        assert "similar" not in browser.evaluate("document.getElementById('status').textContent")
        found = api.get("/api/search", params={"query": "dropped_picture sunset"}).json()["results"]
        assert [r["ID"] for r in found] == [md5]
        assert list(pipeline.settings.upload_staging_dir.iterdir()) == []
