"""Uploads in the chart: the api stages them where every hasher may read them (the shared images volume, and an
allowed local root of the hasher's settings), the upload token comes from the release Secret (generated on
request, kept across upgrades with lookup), and the upload limits reach the api."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paktum_common.local_roots import allowed_roots, is_under
from paktum_common.settings import Settings
from tests.deploy.conftest import CHART, find, pod_spec
from tests.deploy.test_private_mode_chart import env_of
from tests.deploy.test_secret_lookup import live_secret, upgrade_render

UPLOADS = ("--set", "auth.uploadToken.enabled=true")
Render = Callable[..., list[dict[str, Any]]]


def settings_of(objects: list[dict[str, Any]], kind: str, name: str) -> Settings:
    """The Settings the workload's container reads from its literal environment (secrets left out)."""
    env = env_of(objects, kind, name).items()
    given = {key.removeprefix("PAKTUM_").lower(): e["value"] for key, e in env if "value" in e and key[:7] == "PAKTUM_"}
    return Settings(**given)


def data_claim(objects: list[dict[str, Any]], name: str) -> tuple[str, str]:
    """The claim mounted at the workload's data dir, and where."""
    pod = pod_spec(find(objects, "Deployment", name))
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    (mount,) = [m for c in pod["containers"] for m in c["volumeMounts"] if m["mountPath"] == "/data"]
    return claims[mount["name"]], mount["mountPath"]


def test_the_hashers_may_read_what_the_api_stages(render: Render) -> None:
    objects = render()
    api = settings_of(objects, "Deployment", "paktum-api")
    hasher = settings_of(objects, "Deployment", "paktum-hasher")
    # The same volume at the same place, so the api's staged path names the same file in a hasher's pod ...
    assert data_claim(objects, "paktum-api") == data_claim(objects, "paktum-hasher") == ("paktum-images", "/data")
    assert api.data_dir == hasher.data_dir
    # ... and it lies under an allowed root of the hasher's own settings (not only the api-written roots file).
    staged = str(api.upload_staging_dir / "0123456789abcdef0123456789abcdef-00ff00ff.jpg")
    assert is_under(staged, allowed_roots(hasher))
    assert hasher.local_roots == [api.upload_staging_dir]
    # Nothing else on the disk is opened to posts: not the images, not the data dir as a whole.
    assert not is_under(str(hasher.images_dir / "x.jpg"), list(hasher.local_roots))


def test_the_upload_limits_reach_the_api(render: Render) -> None:
    default = settings_of(render(), "Deployment", "paktum-api")
    assert (default.upload_max_files, default.upload_max_request_bytes) == (20, 512 * 1024 * 1024)
    objects = render("--set", "api.upload.maxFiles=3", "--set", "api.upload.maxRequestBytes=5368709120")
    api = settings_of(objects, "Deployment", "paktum-api")
    assert (api.upload_max_files, api.upload_max_request_bytes) == (3, 5 * 1024**3)


def test_the_upload_token_is_generated_on_request_and_only_the_api_gets_it(render: Render) -> None:
    plain = render()
    assert "upload-token" not in find(plain, "Secret", "paktum-secrets")["data"]
    assert "PAKTUM_UPLOAD_TOKEN" not in env_of(plain, "Deployment", "paktum-api")
    objects = render(*UPLOADS)
    token = base64.b64decode(find(objects, "Secret", "paktum-secrets")["data"]["upload-token"]).decode()
    assert len(token) == 48 and token.isalnum()
    assert env_of(objects, "Deployment", "paktum-api")["PAKTUM_UPLOAD_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "paktum-secrets", "key": "upload-token"}
    }
    assert "PAKTUM_UPLOAD_TOKEN" not in env_of(objects, "Deployment", "paktum-hasher")
    assert "PAKTUM_UPLOAD_TOKEN" not in env_of(objects, "CronJob", "paktum-cleanup")
    assert "PAKTUM_UPLOAD_TOKEN" not in env_of(objects, "CronJob", "paktum-scraper")


def test_the_upload_token_from_an_existing_secret(render: Render) -> None:
    objects = render(*UPLOADS, "--set", "auth.existingSecret=my-keys", "--set", "auth.secretKeys.uploadToken=up")
    assert not [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "paktum-secrets"]
    assert env_of(objects, "Deployment", "paktum-api")["PAKTUM_UPLOAD_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "my-keys", "key": "up"}
    }


def test_an_upgrade_keeps_the_upload_token_and_turning_it_on_later_adds_one(helm: str, tmp_path: Path) -> None:
    old = {key: f"live-{key}" for key in ("admin-token", "imgproxy-key", "imgproxy-salt", "meilisearch-master-key")}
    old["redis-password"] = "liveredis"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    kept = upgrade_render(helm, [live_secret({**old, "upload-token": "the-uploaders-token"})], tmp_path / "a", *UPLOADS)
    assert kept == {**old, "upload-token": "the-uploaders-token"}
    added = upgrade_render(helm, [live_secret(old)], tmp_path / "b", *UPLOADS)
    assert {k: v for k, v in added.items() if k != "upload-token"} == old
    assert len(added["upload-token"]) == 48 and added["upload-token"].isalnum()


@pytest.mark.parametrize("user", ["5", "10009"])
def test_a_hasher_of_another_user_than_the_api_is_refused(helm: str, user: str) -> None:
    done = subprocess.run(
        [helm, "template", "paktum", str(CHART), "--set", f"hasher.podSecurityContext.runAsUser={user}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "could not read the uploads the api stages" in done.stderr


def test_notes_say_how_to_read_the_token_and_warn_without_a_shared_volume(helm: str) -> None:
    def notes(*args: str) -> str:
        done = subprocess.run(
            [helm, "install", "paktum", str(CHART), "--dry-run=client", "--namespace", "media", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split("NOTES:", 1)[1]

    shared = notes(*UPLOADS)
    assert "jsonpath='{.data.upload-token}'" in shared
    assert "uploads stay pending" not in shared
    assert "uploads stay pending" in notes("--set", "persistence.images.enabled=false")
