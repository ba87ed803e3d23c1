"""The api against its own OpenAPI schema: schemathesis (every check it has) on a live api on loopback with
a filled index and the admin token, bounded in examples. Zero server errors and zero conformance failures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from paktum_common.settings import Settings
from tests.integration.apiserver import serve

TOKEN = "schemathesis-admin-token"


@pytest.fixture
def api(indexed: Settings) -> Iterator[httpx.Client]:
    # No hasher runs while schemathesis does (the one that filled the index stopped): with the api's notion of
    # "lately" at a second, an upload answers `pending` at once rather than wait for nobody.
    update = {"admin_token": SecretStr(TOKEN), "reclaim_idle_ms": 0}
    with serve(indexed.model_copy(update=update)) as client:
        yield client


def schemathesis(tmp_path: Path, base_url: str, *options: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{base_url}/openapi.json",
        "--checks", "all",
        "--max-examples", "15",  # per operation and phase: seconds, not minutes
        "--workers", "1",
        "--seed", "20261202",
        "--generation-database", "none",
        "--request-timeout", "10",
        "--no-color",
        *options,
    ]  # fmt: skip
    # Its report folder lands in the working directory: keep it in the test's own.
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=170, check=False)


def test_every_route_conforms_to_its_schema(tmp_path: Path, api: httpx.Client) -> None:
    some = api.get("/api/search", params={"query": "animal", "limit": 1}).json()["results"][0]
    # Real IDs and names as well as made-up ones, so the checks reach past the 404s.
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\nimage_id = "{some["ID"]}"\nfilename = "{some["Filename"]}"\n', encoding="utf-8")
    auth = ("--header", f"Authorization: Bearer {TOKEN}")
    # Two routes take what no JSON schema can describe, so a schema-valid request may rightly be a 400: a tag
    # edit (PATCH: a tag not both added and removed, something to change) and a picture to search by (any bytes
    # fit the schema of a file; only a decodable picture, or a URL that answers with one, is searched). That one
    # check is left out for them, and only for them.
    no_acceptance = ("--exclude-checks", "positive_data_acceptance")
    edits = schemathesis(tmp_path, str(api.base_url), *auth, "--include-method", "PATCH", *no_acceptance)
    assert edits.returncode == 0, edits.stdout[-6000:]
    # And an upload's file is any bytes to a schema, but only an image is taken (415 otherwise).
    for path in ("/api/similar", "/api/upload"):
        files = schemathesis(tmp_path, str(api.base_url), *auth, "--include-path", path, *no_acceptance)
        assert files.returncode == 0, files.stdout[-6000:]
    result = schemathesis(
        tmp_path,
        str(api.base_url),
        *auth,
        "--exclude-method",
        "PATCH",
        "--exclude-path",
        "/api/similar",
        "--exclude-path",
        "/api/upload",
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "No failures" in summary or "0 failures" in summary or "passed" in summary, summary
