"""Optional APIs: the Prometheus Operator's monitors and KEDA's ScaledObject render only where the cluster serves
them. Every values file is rendered against a capability set without those CRDs (what `helm install` sees on a
bare cluster) and with them (`--api-versions`), and NOTES names what was left out."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.conftest import CHART, VALUES_FILES, WITH_CRDS, Manifest, kinds, parse, values_args
from tests.deploy.fake_apiserver import OPTIONAL_GROUPS, serving

Render = Callable[..., list[Manifest]]
OPTIONAL_API_VERSIONS = ("monitoring.coreos.com/", "keda.sh/")
ASKS_FOR_THEM = {"full"}  # the values files that switch the monitors and KEDA on


def optional(objects: list[Manifest]) -> list[Manifest]:
    return [o for o in objects if o["apiVersion"].startswith(OPTIONAL_API_VERSIONS)]


def install(helm: str, workdir: Path, crds: bool, *args: str) -> tuple[list[Manifest], str]:
    """`helm install --dry-run=server` on a cluster whose discovery serves the CRDs' APIs or not: what it would
    create, and its NOTES. Without the fix this is where the issue's "no matches for kind" came from."""
    # helm caches discovery per host and port under $HOME/.kube/cache: a fresh home per call, or a port reused
    # by a later stand-in would answer with the earlier one's API groups.
    env = {**os.environ, "HOME": str(workdir), "KUBECACHEDIR": str(workdir / "kube-cache")}
    with serving([], workdir, without=() if crds else OPTIONAL_GROUPS) as cluster:
        done = subprocess.run(
            [helm, "install", "paktum", str(CHART), "--namespace", "media", "--dry-run=server",
             "--disable-openapi-validation", "--kubeconfig", str(cluster.kubeconfig), *args],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    manifest = out[out.index("MANIFEST:") : out.index("NOTES:")].removeprefix("MANIFEST:")
    return parse(manifest), out[out.index("NOTES:") :]


@pytest.mark.parametrize("values", VALUES_FILES)
def test_without_the_crds_nothing_of_their_apis_renders_and_notes_say_why(
    render: Render, helm: str, values: str, tmp_path: Path
) -> None:
    assert not optional(render(*values_args(values))), "helm template knows no CRDs unless told"
    objects, text = install(helm, tmp_path, False, *values_args(values))
    assert objects and not optional(objects), [o["kind"] for o in optional(objects)]
    if values in ASKS_FOR_THEM:
        for kind, api in (("ServiceMonitor", "monitoring.coreos.com/v1"), ("PodMonitor", "monitoring.coreos.com/v1"),
                          ("ScaledObject", "keda.sh/v1alpha1")):  # fmt: skip
            assert f"- {kind} " in text and f"does not serve {api}" in text, kind
        assert "--api-versions monitoring.coreos.com/v1 --api-versions keda.sh/v1alpha1" in text
        # The hasher still scales: on CPU, as without KEDA.
        assert [h["metadata"]["name"] for h in kinds(objects, "HorizontalPodAutoscaler")] == ["paktum-hasher"]
    else:
        assert "Skipped" not in text


@pytest.mark.parametrize("values", VALUES_FILES)
def test_with_the_crds_they_render_as_asked(render: Render, helm: str, values: str, tmp_path: Path) -> None:
    installed, text = install(helm, tmp_path, True, *values_args(values))
    for objects in (render(*values_args(values), *WITH_CRDS), installed):
        counted = {kind: len(kinds(objects, kind)) for kind in ("ServiceMonitor", "PodMonitor", "ScaledObject")}
        if values in ASKS_FOR_THEM:
            assert counted == {"ServiceMonitor": 4, "PodMonitor": 4, "ScaledObject": 1}
            assert not kinds(objects, "HorizontalPodAutoscaler"), "KEDA makes its own HPA"
        else:
            assert counted == {"ServiceMonitor": 0, "PodMonitor": 0, "ScaledObject": 0}
    assert "Skipped" not in text


def test_one_api_without_the_other(render: Render) -> None:
    only_monitoring = render(*values_args("full"), "--api-versions", "monitoring.coreos.com/v1")
    assert {o["kind"] for o in optional(only_monitoring)} == {"ServiceMonitor", "PodMonitor"}
    only_keda = render(*values_args("full"), "--api-versions", "keda.sh/v1alpha1")
    assert {o["kind"] for o in optional(only_keda)} == {"ScaledObject", "TriggerAuthentication"}
