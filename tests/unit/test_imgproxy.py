"""imgproxy signing, checked byte for byte against the examples in imgproxy's own documentation."""

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from paktum_api.imgproxy import Imgproxy, sign_path
from paktum_common.settings import Settings

# imgproxy's "Signing the URL" guide: key `secret`, salt `hello`, hex-encoded.
DOC_KEY = bytes.fromhex("736563726574")
DOC_SALT = bytes.fromhex("68656C6C6F")


@pytest.mark.parametrize(
    ("path", "signature"),
    [
        (  # the guide's step-by-step example (basic URL format)
            "/fill/300/400/sm/0/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
            "AfrOrF3gWeDA6VOlDG4TzxMv39O7MXnF4CXpKUwGqRM",
        ),
        (  # the same image in the current guide's processing-options format
            "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
            "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8",
        ),
    ],
    ids=["basic", "processing-options"],
)
def test_signature_matches_imgproxy_documentation(path: str, signature: str) -> None:
    assert sign_path(DOC_KEY, DOC_SALT, path) == signature


def test_url_for_a_stored_file(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        imgproxy_url="https://img.example.com/",
        imgproxy_key=SecretStr("736563726574"),
        imgproxy_salt=SecretStr("68656C6C6F"),
    )
    proxy = Imgproxy.from_settings(settings)
    assert proxy is not None
    url = proxy.url("0123456789abcdef0123456789abcdef.png")
    # local:///0123456789abcdef0123456789abcdef.png, URL-safe base64 without padding
    path = "/rs:fit:480:480/bG9jYWw6Ly8vMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYucG5n.jpg"
    assert url == f"https://img.example.com/{sign_path(DOC_KEY, DOC_SALT, path)}{path}"
    assert "=" not in url and "+" not in url


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"imgproxy_url": "https://img.example.com"},
        {"imgproxy_url": "https://img.example.com", "imgproxy_key": SecretStr("aa")},
        {"imgproxy_key": SecretStr("aa"), "imgproxy_salt": SecretStr("bb")},
        {"imgproxy_url": "", "imgproxy_key": SecretStr("aa"), "imgproxy_salt": SecretStr("bb")},
    ],
    ids=["nothing", "url only", "no salt", "no url", "empty url"],
)
def test_imgproxy_is_off_unless_url_key_and_salt_are_all_set(tmp_path: Path, given: dict[str, object]) -> None:
    assert Imgproxy.from_settings(Settings(data_dir=tmp_path, **given)) is None  # type: ignore[arg-type]


def test_key_and_salt_must_be_hex(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="hex-encoded"):
        Settings(data_dir=tmp_path, imgproxy_key=SecretStr("not hex"))  # type: ignore[call-arg]
