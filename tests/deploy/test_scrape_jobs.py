"""startScrape as a Kubernetes Job: the Job built from the CronJob `helm template` renders, compared with what
`kubectl create job --from` makes; the calls the api's client makes against a loopback API server, checked
against the rendered Role; 403, 404, 409 and a slow server; scrapeStatus from the Job's status and the outcome."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from paktum_api.kube import (
    KubeError,
    KubeForbiddenError,
    KubeUnavailableError,
    ScrapeJobConflictError,
    ScrapeJobs,
    job_name,
)
from paktum_common import keys
from paktum_common.contracts import ScrapeOutcome
from paktum_common.settings import Settings
from tests.deploy.conftest import Manifest, find
from tests.deploy.fake_apiserver import ApiCall, FakeApiServer, object_path, serving
from tests.integration.apiserver import serve

Render = Callable[..., list[Manifest]]
TOKEN = "scrape-job-admin-token"
CRONJOB = "paktum-scraper"


@pytest.fixture
def cronjob(render: Render) -> Manifest:
    return find(render(), "CronJob", CRONJOB)


def annotated_without_labels(cronjob: Manifest) -> Manifest:
    """A CronJob whose job template has annotations (one of them kubectl's own key) and no labels."""
    changed = json.loads(json.dumps(cronjob))
    changed["spec"]["jobTemplate"]["metadata"] = {
        "annotations": {"cronjob.kubernetes.io/instantiate": "by-template", "team": "media"}
    }
    return changed


@pytest.fixture
def apiserver(cronjob: Manifest, tmp_path: Path) -> Iterator[FakeApiServer]:
    with serving([cronjob], tmp_path) as server:
        yield server


def job_settings(settings: Settings, server: FakeApiServer, **update: Any) -> Settings:
    values = {
        "scrape_job_cronjob": CRONJOB, "scrape_job_namespace": "media", "kube_config": str(server.kubeconfig),
        "admin_token": SecretStr(TOKEN), **update,
    }  # fmt: skip
    return settings.model_copy(update=values)


def request_env(queries: str, request_id: str, source: str | None = None) -> dict[str, str]:
    env = {"PAKTUM_SCRAPE_QUERIES": queries, "PAKTUM_SCRAPE_REQUEST_ID": request_id}
    if source:
        env["PAKTUM_SCRAPE_SOURCE"] = source
    return env


def env_values(job: Manifest) -> dict[str, Any]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("variant", ["as-rendered", "annotated-without-labels"])
async def test_the_job_is_the_one_kubectl_create_job_from_makes_with_the_request_in_its_env(
    kubectl: str, cronjob: Manifest, settings: Settings, tmp_path: Path, variant: str
) -> None:
    if variant != "as-rendered":
        cronjob = annotated_without_labels(cronjob)
    with serving([cronjob], tmp_path) as apiserver:
        await compare_with_kubectl(kubectl, apiserver, settings)


async def compare_with_kubectl(kubectl: str, apiserver: FakeApiServer, settings: Settings) -> None:
    name = job_name(CRONJOB, "req-1")
    done = subprocess.run(
        [kubectl, "--kubeconfig", str(apiserver.kubeconfig), "--namespace", "media", "create", "job", name,
         f"--from=cronjob/{CRONJOB}", "--dry-run=client", "-o", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    by_kubectl = json.loads(done.stdout)
    jobs = ScrapeJobs(job_settings(settings, apiserver))
    state = await jobs.start("req-1", request_env("hug\ncat_ears solo", "req-1", "safebooru"))
    assert (state.name, state.phase) == (name, "pending")
    created = apiserver.stored("Job", "media", name)
    assert created is not None
    for server_side in ("uid", "creationTimestamp", "resourceVersion"):
        created["metadata"].pop(server_side)
    by_kubectl.pop("status")
    # The one difference is the request, in the scraper container's environment; everything else is kubectl's.
    env = env_values(created)
    assert env["PAKTUM_SCRAPE_QUERIES"] == "hug\ncat_ears solo"
    assert env["PAKTUM_SCRAPE_REQUEST_ID"] == "req-1"
    assert env["PAKTUM_SCRAPE_SOURCE"] == "safebooru"
    assert env_values(by_kubectl)["PAKTUM_SCRAPE_QUERIES"] == "rating:general"
    expected = json.loads(json.dumps(by_kubectl))
    container = expected["spec"]["template"]["spec"]["containers"][0]
    asked = ("PAKTUM_SCRAPE_QUERIES", "PAKTUM_SCRAPE_REQUEST_ID", "PAKTUM_SCRAPE_SOURCE")
    kept = [e for e in container["env"] if e["name"] not in asked]
    container["env"] = kept + [{"name": key, "value": env[key]} for key in asked]
    assert created == expected
    assert created["spec"]["ttlSecondsAfterFinished"] > 0, "finished scrape Jobs are cleaned up"
    template = apiserver.stored("CronJob", "media", CRONJOB)
    assert template is not None
    if "labels" in template["spec"]["jobTemplate"]["metadata"]:
        assert created["metadata"]["labels"]["app.kubernetes.io/component"] == "scraper"  # kubectl get jobs -l ...
    else:
        assert created["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "by-template"


def rule_allows(rule: Manifest, call: ApiCall) -> bool:
    return (
        call.group in rule["apiGroups"]
        and call.resource in rule["resources"]
        and call.verb in rule["verbs"]
        and (not rule.get("resourceNames") or call.name in rule["resourceNames"])
    )


async def test_the_role_allows_every_call_the_client_makes_and_nothing_else(
    render: Render, apiserver: FakeApiServer, settings: Settings
) -> None:
    objects = render()
    jobs = ScrapeJobs(job_settings(settings, apiserver))
    await jobs.start("r1", request_env("hug", "r1"))
    await jobs.start("r1", request_env("hug", "r1"))  # a repeat: the create meets a 409, the Job is read back
    await jobs.state("r1")
    assert await jobs.state("never-made") is None
    calls = [c for c in apiserver.calls if c.resource in ("cronjobs", "jobs")]
    assert {(c.verb, c.resource) for c in calls} == {("get", "cronjobs"), ("create", "jobs"), ("get", "jobs")}
    role = find(objects, "Role", "paktum-api")
    assert all(c.namespace == role["metadata"]["namespace"] for c in calls)
    for call in calls:
        assert any(rule_allows(rule, call) for rule in role["rules"]), call
    # Nothing more: each verb on each resource the Role grants is one a call used, on the names it used.
    for rule in role["rules"]:
        for resource in rule["resources"]:
            for verb in rule["verbs"]:
                used = [c for c in calls if (c.verb, c.resource) == (verb, resource)]
                assert used, f"the Role grants {verb} {resource} and the client never asks for it"
                if rule.get("resourceNames"):
                    assert {c.name for c in used} <= set(rule["resourceNames"])
        assert rule["apiGroups"] == ["batch"]
    assert role["rules"][0]["resourceNames"] == [CRONJOB], "only the scraper CronJob may be read"
    binding = find(objects, "RoleBinding", "paktum-api")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "paktum-api"}
    api = find(objects, "Deployment", "paktum-api")["spec"]["template"]["spec"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": api["serviceAccountName"], "namespace": "media"}]
    assert api["automountServiceAccountToken"] is True
    assert find(objects, "ServiceAccount", api["serviceAccountName"])


async def test_a_repeated_request_id_returns_the_existing_job(apiserver: FakeApiServer, settings: Settings) -> None:
    jobs = ScrapeJobs(job_settings(settings, apiserver))
    first = await jobs.start("again", request_env("hug", "again"))
    stored = apiserver.stored("Job", "media", first.name)
    assert stored is not None
    stored["status"] = {"active": 1}
    second = await jobs.start("again", request_env("hug", "again"))
    assert (second.name, second.phase) == (first.name, "running")
    assert sum(c.verb == "create" for c in apiserver.calls) == 2


async def test_a_job_of_that_name_made_for_another_request_is_a_conflict(
    cronjob: Manifest, tmp_path: Path, settings: Settings
) -> None:
    other = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": job_name(CRONJOB, "taken"), "namespace": "media"},
        "spec": {"template": {"spec": {"containers": [{"name": "scraper", "env": [
            {"name": "PAKTUM_SCRAPE_REQUEST_ID", "value": "something-else"}]}]}}},
    }  # fmt: skip
    with serving([cronjob, other], tmp_path) as server:
        jobs = ScrapeJobs(job_settings(settings, server))
        with pytest.raises(ScrapeJobConflictError, match="not this request's"):
            await jobs.start("taken", request_env("hug", "taken"))


async def test_a_forbidden_create_says_so(apiserver: FakeApiServer, settings: Settings) -> None:
    apiserver.forbidden.add(("create", "jobs"))
    jobs = ScrapeJobs(job_settings(settings, apiserver))
    with pytest.raises(KubeForbiddenError, match=r"create Job paktum-scraper-r2: refused .*403.*forbidden"):
        await jobs.start("r2", request_env("hug", "r2"))
    assert apiserver.stored("Job", "media", job_name(CRONJOB, "r2")) is None


async def test_a_missing_cronjob_says_which(tmp_path: Path, settings: Settings) -> None:
    with serving([], tmp_path) as server:
        jobs = ScrapeJobs(job_settings(settings, server))
        with pytest.raises(KubeError, match=r"read CronJob paktum-scraper: not found in namespace media"):
            await jobs.start("r3", request_env("hug", "r3"))


async def test_a_slow_server_times_out_without_blocking_the_event_loop(
    apiserver: FakeApiServer, settings: Settings
) -> None:
    apiserver.delay = 1.5
    jobs = ScrapeJobs(job_settings(settings, apiserver, kube_timeout_seconds=0.3))
    call = asyncio.create_task(jobs.start("slow", request_env("hug", "slow")))

    async def meanwhile() -> bool:
        await asyncio.sleep(0.05)
        return not call.done()  # the loop ran this while the client waited on the server

    assert await meanwhile(), "the client's call held the event loop"
    with pytest.raises(KubeUnavailableError, match="no answer from the Kubernetes API"):
        await call


@pytest.mark.parametrize("bad", ["Has_Upper", "-lead", "trail-", "x" * 33, "a/b", ""])
async def test_a_bad_request_id_is_refused_before_any_call(
    apiserver: FakeApiServer, settings: Settings, bad: str
) -> None:
    with serve(job_settings(settings, apiserver)) as api:
        body = graphql(api, 'mutation($id: String) { startScrape(queries: ["hug"], requestId: $id) }', id=bad or "A")
    assert "not a request ID" in body["errors"][0]["message"]
    assert not [c for c in apiserver.calls if c.resource == "jobs"]


def graphql(api: Any, query: str, **variables: Any) -> dict[str, Any]:
    response = api.post(
        "/query", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


STATUS = "query($id: String!) { scrapeStatus(ID: $id) { ID Status Reason Found Published Job } }"


async def test_scrape_status_follows_the_job_and_the_outcome(
    apiserver: FakeApiServer, settings: Settings, redis_client: Redis
) -> None:
    with serve(job_settings(settings, apiserver)) as api:
        started = graphql(api, 'mutation { startScrape(queries: ["hug", "cat  ears"], requestId: "s1") }')
        assert started == {"data": {"startScrape": "s1"}}
        job = apiserver.stored("Job", "media", "paktum-scraper-s1")
        assert job is not None
        assert env_values(job)["PAKTUM_SCRAPE_QUERIES"] == "hug\ncat ears"
        status = graphql(api, STATUS, id="s1")["data"]["scrapeStatus"]
        assert (status["Status"], status["Job"]) == ("pending", "paktum-scraper-s1")
        job["status"] = {"active": 1}
        assert graphql(api, STATUS, id="s1")["data"]["scrapeStatus"]["Status"] == "running"
        outcome = ScrapeOutcome(request="s1", status="done", queries="hug\ncat ears", found=7, published=5)
        await redis_client.xadd(keys.SCRAPE_RESULTS, outcome.to_stream())  # type: ignore[arg-type]
        job["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        status = graphql(api, STATUS, id="s1")["data"]["scrapeStatus"]
        assert (status["Status"], status["Found"], status["Published"]) == ("done", 7, 5)
        rest = api.get("/api/admin/scrapes/s1", headers={"Authorization": f"Bearer {TOKEN}"})
        assert rest.status_code == 200
        assert rest.json()["status"] == "done" and rest.json()["published"] == 5

        graphql(api, 'mutation { startScrape(queries: ["hug"], requestId: "s2") }')
        failed = apiserver.stored("Job", "media", "paktum-scraper-s2")
        assert failed is not None
        deadline = {"reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}
        failed["status"] = {"failed": 2, "conditions": [{"type": "Failed", "status": "True", **deadline}]}
        status = graphql(api, STATUS, id="s2")["data"]["scrapeStatus"]
        assert status["Status"] == "failed" and status["Reason"].startswith("DeadlineExceeded: Job was active")

        assert api.get("/api/admin/scrapes/nope", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
        assert api.get("/api/admin/scrapes/s1").status_code == 401
        apiserver.forbidden.add(("get", "jobs"))
        refused = api.get("/api/admin/scrapes/s1", headers={"Authorization": f"Bearer {TOKEN}"})
        assert refused.status_code == 502 and "403" in refused.json()["error"]
    assert object_path("Job", "media", "x") == "/apis/batch/v1/namespaces/media/jobs/x"


async def test_start_scrape_says_why_the_kubernetes_api_refused(apiserver: FakeApiServer, settings: Settings) -> None:
    apiserver.forbidden.add(("get", "cronjobs"))
    with serve(job_settings(settings, apiserver)) as api:
        body = graphql(api, 'mutation { startScrape(queries: ["hug"], requestId: "r9") }')
    message = body["errors"][0]["message"]
    assert message.startswith("read CronJob paktum-scraper: refused by the Kubernetes API (403")


def test_job_mode_outside_a_cluster_without_a_kubeconfig_is_a_clear_error(settings: Settings) -> None:
    assert ScrapeJobs.from_settings(settings) is None, "no CronJob named: the Redis stream, no client"
    in_cluster = settings.model_copy(update={"scrape_job_cronjob": CRONJOB})
    with pytest.raises(KubeError, match="the in-cluster service account gives no Kubernetes API"):
        ScrapeJobs.from_settings(in_cluster)
