"""Private mode in the chart: the read token generated into the release Secret on request, kept across upgrades,
and handed to the api (and nothing else) as PAKTUM_READ_TOKEN."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.deploy.conftest import find
from tests.deploy.test_secret_lookup import live_secret, upgrade_render

PRIVATE = ("--set", "auth.readToken.enabled=true")


def env_of(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    spec = find(objects, kind, name)["spec"]
    pod = spec["jobTemplate"]["spec"]["template"]["spec"] if kind == "CronJob" else spec["template"]["spec"]
    return {e["name"]: e for c in pod["containers"] for e in c.get("env", [])}


def test_private_mode_generates_the_read_token_and_gives_it_to_the_api(
    render: Callable[..., list[dict[str, Any]]],
) -> None:
    public = render()  # reads stay public unless asked
    assert "read-token" not in find(public, "Secret", "paktum-secrets")["data"]
    assert "PAKTUM_READ_TOKEN" not in env_of(public, "Deployment", "paktum-api")
    objects = render(*PRIVATE)
    token = base64.b64decode(find(objects, "Secret", "paktum-secrets")["data"]["read-token"]).decode()
    assert len(token) == 48 and token.isalnum()
    assert env_of(objects, "Deployment", "paktum-api")["PAKTUM_READ_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "paktum-secrets", "key": "read-token"}
    }
    # Only the api serves reads: the other workloads never see the token.
    assert "PAKTUM_READ_TOKEN" not in env_of(objects, "Deployment", "paktum-hasher")
    assert "PAKTUM_READ_TOKEN" not in env_of(objects, "CronJob", "paktum-cleanup")


def test_private_mode_with_an_existing_secret_reads_its_key(render: Callable[..., list[dict[str, Any]]]) -> None:
    objects = render(*PRIVATE, "--set", "auth.existingSecret=my-keys", "--set", "auth.secretKeys.readToken=reader")
    assert not [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "paktum-secrets"]
    assert env_of(objects, "Deployment", "paktum-api")["PAKTUM_READ_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "my-keys", "key": "reader"}
    }


def test_an_upgrade_keeps_the_read_token_and_turning_it_on_later_adds_one(helm: str, tmp_path: Path) -> None:
    old = {key: f"live-{key}" for key in ("admin-token", "imgproxy-key", "imgproxy-salt", "meilisearch-master-key")}
    old["redis-password"] = "liveredis"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    kept = upgrade_render(
        helm, [live_secret({**old, "read-token": "the-token-readers-have"})], tmp_path / "a", *PRIVATE
    )
    assert kept == {**old, "read-token": "the-token-readers-have"}
    added = upgrade_render(helm, [live_secret(old)], tmp_path / "b", *PRIVATE)
    assert {k: v for k, v in added.items() if k != "read-token"} == old
    assert len(added["read-token"]) == 48 and added["read-token"].isalnum()
