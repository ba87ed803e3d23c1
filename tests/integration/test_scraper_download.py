"""The hasher's download of scraped posts from a fixture booru: guards, retries, md5, and videos."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from paktum_common.contracts import Post
from paktum_common.errors import BadPostError, SourceReadError, TransientError
from paktum_common.search import parse_query
from paktum_common.settings import Settings
from paktum_hasher.fetch import VideoSkippedError, _tls, fetch_media, resolve, sniff_video
from paktum_scraper.run import scrape
from tests.fixtures.booru.server import Fault, FixtureBooru, FixturePost, fixture_posts
from tests.imagefiles import encode, picture
from tests.integration.pipeline import Pipeline
from tests.integration.scrape_settings import with_sources

FFMPEG = shutil.which("ffmpeg")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"download_allow_private": True, "scrape_rate": 50.0})


@pytest.fixture
def server() -> Iterator[FixtureBooru]:
    booru = FixtureBooru("danbooru").start()
    yield booru
    booru.stop()


def _url(server: FixtureBooru, post: FixturePost) -> str:
    return server.url + server.file_path(post)


def _scrape_settings(settings: Settings, server: FixtureBooru) -> Settings:
    sources = {"danbooru": {"api": "danbooru", "url": server.url}}
    return with_sources(settings, sources)


async def test_a_truncated_download_is_retried_and_then_indexed(
    settings: Settings, server: FixtureBooru, pipeline: Pipeline, redis_client: Redis
) -> None:
    [post] = fixture_posts(1, 1, ["hug"], "g", size=(400, 300))
    server.add(post)
    server.fail_next("file", Fault(truncate=True))
    [report] = await scrape(_scrape_settings(settings, server), ["danbooru"], [["hug"]])
    assert report.published == 1
    await pipeline.drain()
    hits = (await pipeline.search.search(parse_query("hug"), 10)).hits
    assert [hit.ID for hit in hits] == [post.real_md5]
    files = [r for r in server.requests if r.path == server.file_path(post)]
    assert len(files) == 2  # the cut-short transfer, then the whole file
    assert await redis_client.xlen(settings.dead_letter_stream) == 0


async def test_a_truncated_download_is_a_transient_error(settings: Settings, server: FixtureBooru) -> None:
    [post] = fixture_posts(1, 1, ["hug"], "g", size=(400, 300))
    server.add(post)
    server.fail_next("file", Fault(truncate=True))
    with pytest.raises(TransientError, match="cut short"):
        await fetch_media("danbooru", _url(server, post), settings)


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        (Fault(404, b"<html>404</html>"), SourceReadError, "HTTP 404"),
        (Fault(403, b"<html>403</html>"), SourceReadError, "HTTP 403"),
        (Fault(503, b""), TransientError, "HTTP 503"),
        (Fault(429, b"", headers={"Retry-After": "5"}), TransientError, "HTTP 429"),
        (Fault(204, b""), SourceReadError, "HTTP 204 instead of the file"),
    ],
    ids=["gone", "forbidden", "unavailable", "rate-limited", "no-content"],
)
async def test_http_failures_are_permanent_or_transient_by_status(
    settings: Settings, server: FixtureBooru, fault: Fault, error: type[Exception], message: str
) -> None:
    [post] = fixture_posts(1, 1, ["hug"], "g")
    server.add(post)
    server.fail_next("file", fault)
    with pytest.raises(error, match=message):
        await fetch_media("danbooru", _url(server, post), settings)


async def test_redirects_are_followed_and_checked(settings: Settings, server: FixtureBooru) -> None:
    [post] = fixture_posts(1, 1, ["hug"], "g")
    server.add(post)
    server.fail_next("file", Fault(302, b"", headers={"Location": server.file_path(post)}))
    media = await fetch_media("danbooru", _url(server, post), settings)
    assert media.data == post.file and media.picture == post.file and media.ext is None
    server.fail_next("file", *[Fault(302, b"", headers={"Location": server.file_path(post)})] * 6)
    with pytest.raises(SourceReadError, match="more than 5 redirects"):
        await fetch_media("danbooru", _url(server, post), settings)


async def test_loopback_is_refused_unless_the_setting_allows_it(
    settings: Settings, server: FixtureBooru, pipeline: Pipeline, redis_client: Redis
) -> None:
    [post] = fixture_posts(1, 1, ["hug"], "g")
    server.add(post)
    strict = settings.model_copy(update={"download_allow_private": False})
    with pytest.raises(BadPostError, match=r"non-public address 127\.0\.0\.1.*PAKTUM_DOWNLOAD_ALLOW_PRIVATE"):
        await fetch_media("danbooru", _url(server, post), strict)
    assert not [r for r in server.requests if r.path == server.file_path(post)]  # not even connected


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for `localhost` only (made by openssl, as an operator would)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no test certificate for the https download test")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


async def test_https_connects_to_the_checked_address_and_still_verifies_the_host_name(
    settings: Settings, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    booru = FixtureBooru("danbooru", tls=context).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test certificate, as httpx reads it
    _tls.cache_clear()
    try:
        [post] = fixture_posts(1, 1, ["hug"], "g")
        booru.add(post)
        media = await fetch_media("danbooru", _url(booru, post), settings)
        assert media.data == post.file
        # The same server by its address: the certificate names localhost only, so the check must fail.
        by_address = _url(booru, post).replace("https://localhost:", "https://127.0.0.1:")
        with pytest.raises(TransientError, match=r"(?i)certificate"):
            await fetch_media("danbooru", by_address, settings)
    finally:
        booru.stop()
        _tls.cache_clear()


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("127.0.0.1", False), ("10.1.2.3", False), ("169.254.169.254", False), ("::1", False), ("8.8.8.8", True)],
    ids=["loopback", "private", "link-local-metadata", "ipv6-loopback", "public"],
)
async def test_only_public_addresses_pass_the_guard(host: str, allowed: bool) -> None:
    if allowed:
        assert await resolve(host, 443, allow_private=False) == [host]
    else:
        with pytest.raises(BadPostError, match="non-public"):
            await resolve(host, 443, allow_private=False)


@pytest.mark.parametrize(
    "url",
    ["ftp://booru.example/a.jpg", "file:///etc/passwd", "gopher://booru.example/a.jpg"],
    ids=["ftp", "file-from-a-booru", "gopher"],
)
async def test_only_http_and_https_are_fetched_for_scraped_posts(settings: Settings, url: str) -> None:
    with pytest.raises(BadPostError, match=r"refused|unsupported"):
        await fetch_media("danbooru", url, settings)


async def test_files_over_the_size_limit_are_refused(settings: Settings, server: FixtureBooru) -> None:
    [post] = fixture_posts(1, 1, ["hug"], "g", size=(400, 300))
    server.add(post)
    small = settings.model_copy(update={"max_file_bytes": len(post.file) - 1})
    with pytest.raises(SourceReadError, match="PAKTUM_MAX_FILE_BYTES"):
        await fetch_media("danbooru", _url(server, post), small)


async def test_an_md5_mismatch_is_dead_lettered_with_both_hashes(
    settings: Settings, server: FixtureBooru, pipeline: Pipeline, redis_client: Redis
) -> None:
    [post] = fixture_posts(1, 1, ["hug"], "g")
    post.stated_md5 = "f" * 32
    server.add(post)
    await scrape(_scrape_settings(settings, server), ["danbooru"], [["hug"]])
    await pipeline.drain()
    [(_, fields)] = await redis_client.xrange(settings.dead_letter_stream)
    assert Post.from_stream(fields).source_id == "1"
    assert f"the source states {'f' * 32}, the file is {post.real_md5}" in fields["reason"]
    assert await pipeline.search.count() == 0


def test_video_containers_are_recognised_by_their_magic_bytes() -> None:
    assert sniff_video(b"\x1a\x45\xdf\xa3" + b"\0" * 20) == "webm"
    assert sniff_video(b"\0\0\0\x20ftypisom" + b"\0" * 20) == "mp4"
    assert sniff_video(b"\0\0\0\x1cftypavif" + b"\0" * 20) is None  # AVIF is an image in an ISO box
    assert sniff_video(encode(picture(1), "JPEG")) is None


@pytest.mark.skipif(FFMPEG is not None, reason="ffmpeg is installed here: the no-ffmpeg path cannot be shown")
async def test_without_ffmpeg_a_video_post_is_rejected_with_that_reason(
    settings: Settings, server: FixtureBooru, pipeline: Pipeline, redis_client: Redis
) -> None:
    video = FixturePost(7, b"\x1a\x45\xdf\xa3" + b"\x00" * 64, "webm", ["hug"], "g")
    server.add(video)
    with pytest.raises(VideoSkippedError, match="ffmpeg is not installed"):
        await fetch_media("danbooru", _url(server, video), settings)
    await scrape(_scrape_settings(settings, server), ["danbooru"], [["hug"]])
    await pipeline.drain()
    [(_, fields)] = await redis_client.xrange(settings.dead_letter_stream)
    assert "video post skipped: ffmpeg is not installed" in fields["reason"]
    assert not [r for r in server.requests if r.path == server.file_path(video)]  # not downloaded for nothing


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed: the video first-frame path needs it")
async def test_a_video_is_indexed_from_its_first_frame(
    settings: Settings, server: FixtureBooru, pipeline: Pipeline, tmp_path: Path
) -> None:
    frame = tmp_path / "frame.png"
    frame.write_bytes(encode(picture(5, (320, 240)), "PNG"))
    webm = tmp_path / "clip.webm"
    subprocess.run(
        [str(FFMPEG), "-v", "error", "-loop", "1", "-i", str(frame), "-frames:v", "5", "-c:v", "libvpx-vp9", str(webm)],
        check=True,
        timeout=120,
    )
    video = FixturePost(7, webm.read_bytes(), "webm", ["hug"], "g", width=320, height=240)
    server.add(video)
    await scrape(_scrape_settings(settings, server), ["danbooru"], [["hug"]])
    await pipeline.drain()
    [hit] = (await pipeline.search.search(parse_query("hug"), 10)).hits
    assert video.real_md5 == hit.ID and hit.Filename.endswith(".webm")
    assert (hit.Width, hit.Height) == (320, 240)
    assert pipeline.store.image_path(hit.Filename).read_bytes() == video.file
