"""Scrape Jobs against a real cluster: runs only with PAKTUM_TEST_KUBECONFIG (a kubeconfig allowed to create a
namespace, and Roles in it). PAKTUM_TEST_NAMESPACE names the scratch namespace (default paktum-live-test); it is
deleted at the end.

The chart's scraper CronJob (suspended) and the api's ServiceAccount, Role and RoleBinding are applied; then the api's
client creates a Job for a request, and the Job is checked against `kubectl create job --from --dry-run=server`,
listed by its label, and the Role is asked (`kubectl auth can-i --as` the api's account) what else it allows.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from paktum_api.kube import ScrapeJobs, job_name
from paktum_common.settings import Settings
from tests.deploy.conftest import CHART

KUBECONFIG = os.environ.get("PAKTUM_TEST_KUBECONFIG", "")
NAMESPACE = os.environ.get("PAKTUM_TEST_NAMESPACE", "paktum-live-test")
CRONJOB = "paktum-scraper"
API_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:paktum-api"

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not KUBECONFIG, reason="set PAKTUM_TEST_KUBECONFIG to a cluster's kubeconfig to run"),
]


def kubectl_run(kubectl: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    done = subprocess.run(
        [kubectl, "--kubeconfig", KUBECONFIG, *args], input=stdin, capture_output=True, text=True, timeout=120
    )
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
def cluster(helm: str, kubectl: str) -> Iterator[str]:
    kubectl_run(kubectl, "create", "namespace", NAMESPACE)
    templates = ["scraper-cronjob.yaml", "api-serviceaccount.yaml", "api-role.yaml", "api-rolebinding.yaml"]
    shown = [arg for name in templates for arg in ("--show-only", f"templates/{name}")]
    rendered = subprocess.run(
        [helm, "template", "paktum", str(CHART), "--namespace", NAMESPACE, *shown],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    kubectl_run(kubectl, "apply", "--namespace", NAMESPACE, "-f", "-", stdin=rendered)
    try:
        yield NAMESPACE
    finally:
        kubectl_run(kubectl, "delete", "namespace", NAMESPACE, "--wait=false", check=False)


def live_settings(namespace: str) -> Settings:
    return Settings(scrape_job_cronjob=CRONJOB, scrape_job_namespace=namespace, kube_config=KUBECONFIG)


async def test_a_request_becomes_the_job_kubectl_would_make(kubectl: str, cluster: str) -> None:
    jobs = ScrapeJobs(live_settings(cluster))
    env = {"PAKTUM_SCRAPE_QUERIES": "hug", "PAKTUM_SCRAPE_REQUEST_ID": "live-1"}
    state = await jobs.start("live-1", env)
    assert state.name == job_name(CRONJOB, "live-1")
    again = await jobs.start("live-1", env)
    assert again.name == state.name, "a repeated request ID makes no second Job"
    ours = json.loads(kubectl_run(kubectl, "--namespace", cluster, "get", "job", state.name, "-o", "json"))
    theirs = json.loads(
        kubectl_run(kubectl, "--namespace", cluster, "create", "job", "live-kubectl", f"--from=cronjob/{CRONJOB}",
                    "--dry-run=server", "-o", "json")
    )  # fmt: skip

    def comparable(job: dict[str, Any]) -> dict[str, Any]:
        spec = json.loads(json.dumps(job["spec"]))
        spec.pop("selector", None)  # the server's, with the Job's own uid
        labels = spec["template"]["metadata"]["labels"]
        for key in list(labels):
            if key.startswith(("controller-uid", "batch.kubernetes.io/controller-uid", "job-name",
                               "batch.kubernetes.io/job-name")):  # fmt: skip
                labels.pop(key)
        for container in spec["template"]["spec"]["containers"]:
            container["env"] = [e for e in container["env"] if not e["name"].startswith("PAKTUM_SCRAPE_QUER")]
            container["env"] = [e for e in container["env"] if e["name"] != "PAKTUM_SCRAPE_REQUEST_ID"]
        owner = job["metadata"]["ownerReferences"]
        annotations = job["metadata"]["annotations"]
        return {"spec": spec, "owner": owner, "labels": job["metadata"]["labels"], "annotations": annotations}

    assert comparable(ours) == comparable(theirs)
    listed = json.loads(
        kubectl_run(kubectl, "--namespace", cluster, "get", "jobs", "-l", "app.kubernetes.io/component=scraper",
                    "-o", "json")
    )  # fmt: skip
    assert state.name in [item["metadata"]["name"] for item in listed["items"]]
    assert (await jobs.state("live-1")) is not None


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("get", f"cronjobs.batch/{CRONJOB}", True),
        ("create", "jobs.batch", True),
        ("get", "jobs.batch", True),
        ("get", "cronjobs.batch/paktum-cleanup", False),
        ("list", "jobs.batch", False),
        ("delete", "jobs.batch", False),
        ("patch", "cronjobs.batch", False),
        ("get", "pods", False),
        ("get", "secrets", False),
        ("create", "pods", False),
    ],
)
def test_the_api_account_may_do_that_and_nothing_else(
    kubectl: str, cluster: str, verb: str, resource: str, allowed: bool
) -> None:
    answer = kubectl_run(
        kubectl, "auth", "can-i", verb, resource, "--namespace", cluster, "--as", API_ACCOUNT, check=False
    ).strip()
    assert answer == ("yes" if allowed else "no"), (verb, resource, answer)
