"""The generated Secret across upgrades: `helm template --dry-run=server` against a stand-in API server on loopback,
so `lookup` really reads a live Secret (plain `helm template` cannot; it renders fresh values every time)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

from tests.deploy.conftest import CHART, find, parse
from tests.deploy.fake_apiserver import fake_apiserver

KEYS = ("admin-token", "imgproxy-key", "imgproxy-salt", "meilisearch-master-key", "redis-password")


def live_secret(data: dict[str, str]) -> dict[str, Any]:
    # Helm adopts only objects its release owns, so the stand-in carries the ownership marks a real install leaves.
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "paktum-secrets",
            "namespace": "media",
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "paktum", "meta.helm.sh/release-namespace": "media"},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def upgrade_render(helm: str, live: list[dict[str, Any]], tmp_path: Path, *args: str) -> dict[str, str]:
    with fake_apiserver(live, tmp_path) as kubeconfig:
        done = subprocess.run(
            [
                helm, "template", "paktum", str(CHART), "--namespace", "media", "--dry-run=server",
                # The stand-in serves no OpenAPI document; the objects are validated strictly elsewhere.
                "--disable-openapi-validation", "--kubeconfig", str(kubeconfig), "--show-only", "templates/secret.yaml",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    secret = find(parse(done.stdout), "Secret", "paktum-secrets")
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_an_upgrade_keeps_every_key_the_live_secret_has(helm: str, tmp_path: Path) -> None:
    live = {key: f"live-{key}-value" for key in KEYS}
    assert upgrade_render(helm, [live_secret(live)], tmp_path) == live


def test_keys_missing_from_the_live_secret_are_generated_and_the_rest_kept(helm: str, tmp_path: Path) -> None:
    rendered = upgrade_render(
        helm, [live_secret({"meilisearch-master-key": "the-key-the-index-was-made-with"})], tmp_path
    )
    assert rendered["meilisearch-master-key"] == "the-key-the-index-was-made-with"
    assert set(rendered) == set(KEYS)
    assert len(rendered["admin-token"]) == 48


def test_a_first_install_generates_fresh_keys(helm: str, tmp_path: Path) -> None:
    rendered = upgrade_render(helm, [], tmp_path)
    assert set(rendered) == set(KEYS)
    assert not any(value.startswith("live-") for value in rendered.values())
