"""The Helm chart, linted and rendered with every values file, validated strictly, and its wiring read back."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tomllib
from collections.abc import Callable
from typing import Any

import pytest

from paktum_common.settings import Settings
from paktum_scraper.main import parser as scraper_parser
from paktum_scraper.sources import source_configs
from tests.deploy.conftest import (
    CHART,
    KUBERNETES_VERSION,
    ROOT,
    SERVICES,
    STREAM_MODE,
    VALUES_FILES,
    WITH_CRDS,
    Manifest,
    find,
    kinds,
    pod_labels,
    pod_spec,
    run,
    values_args,
    workloads,
)

Render = Callable[..., list[Manifest]]

# Every PAKTUM_ name the chart sets must be a field of paktum_common.settings, so a mistyped or unread one fails.
SETTINGS = {f"PAKTUM_{name.upper()}" for name in Settings.model_fields}
PAKTUM_COMPONENTS = {"api", "hasher", "cleanup", "scraper", "scraper-requests"}


def component(obj: Manifest) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def containers(obj: Manifest) -> list[Manifest]:
    return list(pod_spec(obj)["containers"])


def env_of(container: Manifest) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.mark.parametrize("values", VALUES_FILES)
def test_helm_lint_strict(helm: str, values: str) -> None:
    run(helm, "lint", "--strict", str(CHART), *values_args(values))


@pytest.mark.parametrize("values", VALUES_FILES)
def test_every_rendered_object_validates_strictly(render: Render, values: str, tmp_path: Any) -> None:
    objects = render(*values_args(values))
    builtin = [o for o in objects if not o["apiVersion"].startswith(("monitoring.coreos.com/", "keda.sh/"))]
    path = tmp_path / "rendered.yaml"
    path.write_text("\n---\n".join(json.dumps(o) for o in builtin))
    run(str(ROOT / ".venv" / "bin" / "kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, "--quiet", str(path))


def test_the_validator_rejects_a_mistyped_field(render: Render, tmp_path: Any) -> None:
    # Guards the test above: a validator that accepts anything would make it pass for nothing.
    deployment = find(render(), "Deployment", "paktum-api")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    path = tmp_path / "broken.yaml"
    path.write_text(json.dumps(broken))
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "readinesProbe" in done.stdout + done.stderr


@pytest.mark.parametrize("values", VALUES_FILES)
def test_selectors_match_their_pods(render: Render, values: str) -> None:
    objects = render(*values_args(values))
    for obj in workloads(objects):
        labels = pod_labels(obj)
        if obj["kind"] != "CronJob":
            selector = obj["spec"]["selector"]["matchLabels"]
            assert selector.items() <= labels.items(), obj["metadata"]["name"]
    pods = [(pod_labels(o), containers(o)) for o in workloads(objects)]
    for service in kinds(objects, "Service"):
        selector = service["spec"]["selector"]
        matched = [cs for labels, cs in pods if selector.items() <= labels.items()]
        assert matched, f"Service {service['metadata']['name']} selects no pod"
        port_names = {p["name"] for cs in matched for c in cs for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"{service['metadata']['name']}: no container port {port}"
    for pdb in kinds(objects, "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= labels.items() for labels, _ in pods)


@pytest.mark.parametrize("values", VALUES_FILES)
def test_every_volume_mount_and_claim_exists(render: Render, values: str) -> None:
    objects = render(*values_args(values))
    claims = {o["metadata"]["name"] for o in kinds(objects, "PersistentVolumeClaim")}
    claims.add("shared-images")  # external-values.yaml's existingClaim
    for obj in workloads(objects):
        spec = pod_spec(obj)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        templates = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
        for container in spec["containers"]:
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes or mount["name"] in templates, (obj["metadata"]["name"], mount)
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims


def test_the_images_volume_is_shared_by_hasher_api_cleanup_rehash_and_imgproxy(render: Render) -> None:
    objects = render(*values_args("full"))
    sharing = set()
    for obj in workloads(objects):
        for volume in pod_spec(obj).get("volumes", []):
            if volume.get("persistentVolumeClaim", {}).get("claimName") == "paktum-images":
                mounts = [m for c in containers(obj) for m in c.get("volumeMounts", []) if m["name"] == volume["name"]]
                assert mounts and mounts[0]["mountPath"] == "/data"
                sharing.add(component(obj))
    assert sharing == {"api", "hasher", "cleanup", "rehash", "imgproxy"}
    assert find(objects, "PersistentVolumeClaim", "paktum-images")["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize("values", VALUES_FILES)
def test_every_container_is_locked_down_and_sized(render: Render, values: str) -> None:
    for obj in workloads(render(*values_args(values))):
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
        assert spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"]:
            context = container["securityContext"]
            where = f"{obj['metadata']['name']}/{container['name']}"
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"], where
            assert container["resources"]["limits"]["memory"], where
            # A read-only root needs a writable /tmp.
            assert "/tmp" in {m["mountPath"] for m in container.get("volumeMounts", [])}, where
            if obj["kind"] != "CronJob":
                assert "livenessProbe" in container, where


def test_api_probes_service_ingress_and_disruption_budget(render: Render) -> None:
    objects = render(*values_args("full"))
    api = containers(find(objects, "Deployment", "paktum-api"))[0]
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["args"] == ["paktum-api"]
    assert env_of(api)["PAKTUM_API_HOST"] == "0.0.0.0"
    assert int(env_of(api)["PAKTUM_API_PORT"]) == api["ports"][0]["containerPort"]
    ingress = find(objects, "Ingress", "paktum-api")
    assert ingress["spec"]["tls"] == [{"hosts": ["paktum.example.com"], "secretName": "paktum.example.com-tls"}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = find(objects, "Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert find(objects, "PodDisruptionBudget", "paktum-api")["spec"]["minAvailable"] == 1
    assert not kinds(render(), "Ingress"), "the Ingress is opt-in"


def test_hasher_scales_on_cpu_by_default_and_on_pending_entries_with_keda(render: Render) -> None:
    default = render()
    hpa = find(default, "HorizontalPodAutoscaler", "paktum-hasher")
    target = hpa["spec"]["scaleTargetRef"]
    assert (
        find(default, target["kind"], target["name"])["metadata"]["labels"]["app.kubernetes.io/component"] == "hasher"
    )
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    hasher = find(default, "Deployment", "paktum-hasher")
    assert "replicas" not in hasher["spec"], "the HPA owns the replica count"
    assert pod_spec(hasher)["terminationGracePeriodSeconds"] >= 60

    full = render(*values_args("full"), *WITH_CRDS)
    assert not kinds(full, "HorizontalPodAutoscaler"), "KEDA makes its own HPA; two would fight"
    scaled = find(full, "ScaledObject", "paktum-hasher")
    assert scaled["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "paktum-hasher"}
    trigger = scaled["spec"]["triggers"][0]
    settings = Settings()
    assert trigger["type"] == "redis-streams"
    assert trigger["metadata"]["stream"] == settings.stream
    assert trigger["metadata"]["consumerGroup"] == settings.consumer_group
    assert trigger["metadata"]["address"] == "paktum-redis.media.svc:6379"
    assert trigger["metadata"]["pendingEntriesCount"] == "100"


def project_scripts(service: str) -> set[str]:
    with (ROOT / "services" / service / "pyproject.toml").open("rb") as f:
        return set(tomllib.load(f)["project"]["scripts"])


def test_cronjobs_run_the_right_entry_points(render: Render) -> None:
    default = render()
    cleanup = find(default, "CronJob", "paktum-cleanup")
    assert cleanup["spec"]["concurrencyPolicy"] == "Forbid"
    assert cleanup["spec"]["suspend"] is False
    assert containers(cleanup)[0]["args"] == ["paktum-cleanup"]
    assert "paktum-cleanup" in project_scripts("cleanup")
    scraper = find(default, "CronJob", "paktum-scraper")
    assert scraper["spec"]["suspend"] is True, "no schedule in values: runs only when started"
    assert containers(scraper)[0]["args"] == ["paktum-scraper"]
    assert "paktum-scraper" in project_scripts("scraper")
    assert pod_spec(scraper)["restartPolicy"] == "Never"

    rehash = find(default, "CronJob", "paktum-rehash")
    assert rehash["spec"]["suspend"] is True, "runs only when started, after an upgrade that changed the hash rules"
    assert rehash["spec"]["concurrencyPolicy"] == "Forbid"
    assert containers(rehash)[0]["args"] == ["paktum-hasher", "--rehash"]
    assert containers(rehash)[0]["image"] == containers(find(default, "Deployment", "paktum-hasher"))[0]["image"]
    assert pod_spec(rehash)["restartPolicy"] == "Never"

    full = find(render(*values_args("full")), "CronJob", "paktum-scraper")
    assert (full["spec"]["suspend"], full["spec"]["schedule"]) == (False, "0 */6 * * *")
    env = env_of(containers(full)[0])
    assert env["PAKTUM_SCRAPE_QUERIES"] == "hug\ncat_ears solo"
    assert containers(full)[0]["envFrom"] == [{"secretRef": {"name": "booru-credentials"}}]


def scraper_settings(env: dict[str, Any]) -> Settings:
    """The settings a scraper container would read from its literal env (secrets are not needed to check sources)."""
    literal = {k.removeprefix("PAKTUM_").lower(): v for k, v in env.items() if isinstance(v, str)}
    return Settings(**literal)


@pytest.mark.parametrize("values", VALUES_FILES)
def test_scraper_sources_are_ones_the_scraper_accepts(render: Render, values: str) -> None:
    # paktum-scraper --serve-requests refuses to start on a PAKTUM_SCRAPE_SOURCES it cannot read, and a request
    # naming no source falls back to PAKTUM_SCRAPE_SOURCE: both must be known to the scraper's own parser.
    objects = render(*values_args(values), *STREAM_MODE)
    scrapers = [find(objects, "CronJob", "paktum-scraper"), find(objects, "Deployment", "paktum-scraper-requests")]
    for obj in scrapers:
        settings = scraper_settings(env_of(containers(obj)[0]))
        configs = source_configs(settings)
        names = settings.scrape_source
        assert names and set(names) <= set(configs), (obj["metadata"]["name"], names)
    if values == "full":
        configs = source_configs(scraper_settings(env_of(containers(scrapers[1])[0])))
        assert (configs["lanbooru"].api, configs["lanbooru"].url) == ("danbooru", "https://booru.lan.example")
        assert configs["safebooru"].rate == 0.5
    else:
        # Unset, not "{}": an extraEnvFrom Secret may carry PAKTUM_SCRAPE_SOURCES with credentials.
        assert all("PAKTUM_SCRAPE_SOURCES" not in env_of(containers(o)[0]) for o in scrapers)


def test_the_scraper_refuses_sources_in_the_old_list_form() -> None:
    # Guards the test above: the chart once rendered a list here, which the scraper rejects at start.
    with pytest.raises(Exception, match="scrape_sources\n  Input should be a valid dictionary"):
        source_configs(Settings(scrape_sources=json.dumps([{"name": "safebooru"}])))


@pytest.mark.parametrize("values", VALUES_FILES)
def test_scrape_requests_are_served_by_a_deployment(render: Render, values: str) -> None:
    objects = render(*values_args(values), *STREAM_MODE)
    deployment = find(objects, "Deployment", "paktum-scraper-requests")
    container = containers(deployment)[0]
    entry_point, *flags = container["args"]
    assert entry_point in project_scripts("scraper")
    assert scraper_parser().parse_args(flags).serve_requests is True
    # The full spelling: argparse would take an abbreviation too, until another flag shares its prefix.
    assert flags == ["--serve-requests"]
    assert deployment["spec"]["replicas"] == (2 if values == "full" else 1)
    spec = pod_spec(deployment)
    assert 0 < spec["terminationGracePeriodSeconds"] <= 60, "SIGTERM abandons the scrape at once; no long wait"
    env = env_of(container)
    assert env["PAKTUM_CONSUMER_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}

    # The same image, settings and secrets as the CronJob, so a request scrapes as a scheduled run would.
    cronjob = containers(find(objects, "CronJob", "paktum-scraper"))[0]
    assert container["image"] == cronjob["image"]
    assert container.get("envFrom") == cronjob.get("envFrom")
    cron_env = env_of(cronjob)
    own = {"PAKTUM_CONSUMER_NAME", "PAKTUM_METRICS_PORT"}
    assert {k: v for k, v in env.items() if k not in own} == {
        k: v for k, v in cron_env.items() if k != "PAKTUM_SCRAPE_QUERIES"
    }
    assert not kinds(objects, "Role"), "the stream consumer needs no Kubernetes API"
    for name in ("PAKTUM_REDIS_URL", "PAKTUM_SEARCH_URL", "PAKTUM_SCRAPE_SOURCE"):
        assert env[name], name
    if values != "single-node":
        assert "secretKeyRef" in env["PAKTUM_MEILI_KEY"]

    # Its only HTTP is /metrics on PAKTUM_METRICS_PORT: the port, the probe and the Service all point there.
    port = next(p for p in container["ports"] if p["name"] == "metrics")
    assert int(env["PAKTUM_METRICS_PORT"]) == port["containerPort"] == (9191 if values == "full" else 9090)
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert "readinessProbe" not in container, "it takes no traffic"
    service = find(objects, "Service", "paktum-scraper-requests-metrics")
    assert service["spec"]["ports"][0]["port"] == port["containerPort"]
    assert service["spec"]["selector"].items() <= pod_labels(deployment).items()
    cron_pod = pod_labels(find(objects, "CronJob", "paktum-scraper"))
    assert not deployment["spec"]["selector"]["matchLabels"].items() <= cron_pod.items(), "must not adopt Job pods"


def test_scrape_requests_deployment_can_be_switched_off(render: Render, helm: str) -> None:
    off = render(*values_args("full"), "--set=scraper.serveRequests.enabled=false")
    assert not [o for o in off if o["metadata"]["labels"].get("app.kubernetes.io/component") == "scraper-requests"]
    assert find(off, "CronJob", "paktum-scraper"), "the CronJob stays"
    assert [o for o in render(*values_args("full")) if component(o) == "scraper-requests"]
    assert not [o for o in render() if component(o) == "scraper-requests"], "by default startScrape makes Jobs"
    out = run(helm, "install", "paktum", str(CHART), "--dry-run=client", "--set=scraper.jobs.enabled=false")
    assert "startScrape queues requests\nthat nothing carries out" in out


def test_jobs_and_the_stream_consumer_are_one_or_the_other(helm: str) -> None:
    done = subprocess.run(
        [helm, "template", "paktum", str(CHART), "--set=scraper.serveRequests.enabled=true"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0
    assert "scraper.jobs.enabled and scraper.serveRequests.enabled are both true" in done.stderr


def test_deployments_run_the_right_entry_points(render: Render) -> None:
    objects = render()
    for service in ("api", "hasher"):
        container = containers(find(objects, "Deployment", f"paktum-{service}"))[0]
        assert container["args"] == [f"paktum-{service}"]
        assert f"paktum-{service}" in project_scripts(service)
        assert container["image"] == f"ghcr.io/paktum/paktum-{service}:0.1.0"


@pytest.mark.parametrize("values", VALUES_FILES)
def test_paktum_settings_are_real_and_secrets_are_referenced(render: Render, values: str) -> None:
    objects = render(*values_args(values))
    secrets = {o["metadata"]["name"]: o for o in kinds(objects, "Secret")}
    existing = "paktum-keys" if values == "external" else None
    for obj in workloads(objects):
        for container in containers(obj):
            for entry in container.get("env", []):
                if component(obj) in PAKTUM_COMPONENTS:
                    assert entry["name"] in SETTINGS, f"{entry['name']} is not a Paktum setting"
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if not ref:
                    assert not re.search(r"KEY|SALT|TOKEN|PASSWORD", entry["name"]), f"{entry['name']} as a literal"
                    continue
                if existing:
                    assert ref["name"] == existing
                else:
                    assert ref["key"] in secrets[ref["name"]]["data"], ref


def test_secrets_are_generated_not_fixed(render: Render, helm: str) -> None:
    first = find(render(), "Secret", "paktum-secrets")
    again = find(run_render(helm), "Secret", "paktum-secrets")
    assert first["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for key, value in first["data"].items():
        assert again["data"][key] != value, f"{key} is the same in two installs"
        assert len(base64.b64decode(value)) >= 32
    for key in ("imgproxy-key", "imgproxy-salt"):
        assert re.fullmatch(r"[0-9a-f]{64}", base64.b64decode(first["data"][key]).decode()), "imgproxy wants hex"
    assert "lookup" in (CHART / "templates" / "secret.yaml").read_text()
    assert not kinds(render(*values_args("external")), "Secret"), "an existing Secret replaces the generated one"


def run_render(helm: str) -> list[Manifest]:
    from tests.deploy.conftest import parse

    return parse(run(helm, "template", "paktum", str(CHART), "--namespace", "media"))


def test_external_stores_replace_the_statefulsets(render: Render) -> None:
    objects = render(*values_args("external"))
    assert not kinds(objects, "StatefulSet")
    env = env_of(containers(find(objects, "Deployment", "paktum-api"))[0])
    assert env["PAKTUM_REDIS_URL"] == "redis://redis.data.svc:6379/2"
    assert env["PAKTUM_SEARCH_URL"] == "http://meilisearch.search.svc:7700"


def test_in_chart_stores_are_statefulsets_with_claims_and_wired_urls(render: Render) -> None:
    objects = render()
    env = env_of(containers(find(objects, "Deployment", "paktum-hasher"))[0])
    for name, url_var in (("redis", "PAKTUM_REDIS_URL"), ("meilisearch", "PAKTUM_SEARCH_URL")):
        statefulset = find(objects, "StatefulSet", f"paktum-{name}")
        assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
        service = find(objects, "Service", f"paktum-{name}")
        assert statefulset["spec"]["serviceName"] == f"paktum-{name}-headless"
        assert f"//paktum-{name}:{service['spec']['ports'][0]['port']}" in env[url_var]
    meili = env_of(containers(find(objects, "StatefulSet", "paktum-meilisearch"))[0])
    assert meili["MEILI_MASTER_KEY"]["secretKeyRef"] == env["PAKTUM_MEILI_KEY"]["secretKeyRef"]
    single = render(*values_args("single-node"))
    assert not [o for o in single if "meilisearch" in o["metadata"]["name"]]
    assert env_of(containers(find(single, "Deployment", "paktum-api"))[0])["PAKTUM_SEARCH_URL"].startswith("sqlite:")


def test_imgproxy_reads_the_images_volume_with_the_shared_key(render: Render) -> None:
    objects = render(*values_args("full"))
    imgproxy = containers(find(objects, "Deployment", "paktum-imgproxy"))[0]
    env = env_of(imgproxy)
    api_env = env_of(containers(find(objects, "Deployment", "paktum-api"))[0])
    assert env["IMGPROXY_KEY"] == api_env["PAKTUM_IMGPROXY_KEY"]
    assert env["IMGPROXY_SALT"] == api_env["PAKTUM_IMGPROXY_SALT"]
    assert api_env["PAKTUM_IMGPROXY_URL"] == "https://img.paktum.example.com"
    assert next(m for m in imgproxy["volumeMounts"] if m["name"] == "data")["readOnly"] is True
    assert not [o for o in render() if "imgproxy" in o["metadata"]["name"]], "imgproxy is opt-in"


@pytest.mark.parametrize("values", VALUES_FILES)
def test_only_the_api_gets_kubernetes_api_access_and_only_for_scrape_jobs(render: Render, values: str) -> None:
    # startScrape makes a Job (tests/deploy/test_scrape_jobs.py checks the Role against the calls); nothing else
    # in Paktum calls the Kubernetes API, and with the stream consumer not even the api does.
    for args in (values_args(values), (*values_args(values), *STREAM_MODE)):
        objects = render(*args)
        jobs = values != "full" and STREAM_MODE[0] not in args  # full-values.yaml picks the stream consumer
        assert len(kinds(objects, "Role")) == len(kinds(objects, "RoleBinding")) == (1 if jobs else 0)
        for kind in ("ClusterRole", "ClusterRoleBinding"):
            assert not kinds(objects, kind), kind
        for obj in workloads(objects):
            with_token = jobs and obj["kind"] == "Deployment" and component(obj) == "api"
            assert pod_spec(obj)["automountServiceAccountToken"] is with_token, obj["metadata"]["name"]
        for account in kinds(objects, "ServiceAccount"):
            assert account["automountServiceAccountToken"] is False


def test_monitors_select_services_and_ports_that_exist(render: Render) -> None:
    objects = render(*values_args("full"), *WITH_CRDS)
    services = kinds(objects, "Service")
    monitors = kinds(objects, "ServiceMonitor")
    assert {component(m) for m in monitors} == {"api", "hasher", "imgproxy", "scraper-requests"}
    assert {component(m) for m in kinds(objects, "PodMonitor")} == {component(m) for m in monitors}
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        selector = monitor["spec"]["selector"]["matchLabels"]
        matched = [s for s in services if selector.items() <= s["metadata"]["labels"].items()]
        assert matched, monitor["metadata"]["name"]
        port = monitor["spec"]["endpoints"][0]["port"]
        assert all(port in {p["name"] for p in s["spec"]["ports"]} for s in matched), monitor["metadata"]["name"]
    pods = [(pod_labels(o), containers(o)) for o in workloads(objects)]
    for monitor in kinds(objects, "PodMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        port = monitor["spec"]["podMetricsEndpoints"][0]["port"]
        pod_matches = [cs for labels, cs in pods if selector.items() <= labels.items()]
        assert pod_matches and all(port in {p["name"] for c in cs for p in c.get("ports", [])} for cs in pod_matches)
    hasher = env_of(containers(find(objects, "Deployment", "paktum-hasher"))[0])
    assert (
        int(hasher["PAKTUM_METRICS_PORT"])
        == find(objects, "Service", "paktum-hasher-metrics")["spec"]["ports"][0]["port"]
    )


def metric_names_in_code() -> set[str]:
    names = set()
    pattern = re.compile(r'metrics\.(counter|gauge|histogram)\(\s*"(\w+)",\s*"(\w+)"')
    for path in [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/*/src/**/*.py")]:
        for kind, service, name in pattern.findall(path.read_text()):
            base = f"paktum_{service}_{name}"
            names |= {base, f"{base}_total", f"{base}_bucket"} if kind != "gauge" else {base}
    return names


# Figures the cleanup and scraper jobs record with paktum_common.jobstats (documented in the report and README).
JOB_FIGURES = {
    "paktum_cleanup_last_run_variant_groups",
    "paktum_scraper_last_run_posts_published",
    "paktum_scraper_last_run_posts_skipped",
    "paktum_cleanup_last_success_timestamp_seconds",
    "paktum_scraper_last_success_timestamp_seconds",
}


def test_dashboard_queries_only_metrics_that_exist(render: Render) -> None:
    configmap = find(render(*values_args("full")), "ConfigMap", "paktum-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["paktum.json"])
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bpaktum_\w+", e)}
    assert used, "the dashboard has no Paktum queries"
    unknown = used - metric_names_in_code() - JOB_FIGURES
    assert not unknown, f"the dashboard queries metrics nothing exports: {sorted(unknown)}"
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in (
        "ingest rate",
        "queue",
        "hash latency",
        "search latency",
        "search errors",
        "variant groups",
        "source",
    ):
        assert topic in titles, topic


def test_network_policies_admit_only_paktum_pods_to_the_stores(render: Render) -> None:
    objects = render(*values_args("full"))
    policies = {p["metadata"]["name"]: p for p in kinds(objects, "NetworkPolicy")}
    assert set(policies) == {"paktum-redis", "paktum-meilisearch"}
    for name, policy in policies.items():
        target = find(objects, "StatefulSet", name)
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels(target).items()
        allowed = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][1]["values"]
        assert set(allowed) == PAKTUM_COMPONENTS


def test_notes_print_the_scrape_now_command(helm: str) -> None:
    out = run(helm, "install", "paktum", str(CHART), "--namespace", "media", "--dry-run=client")
    assert "kubectl --namespace media create job scrape-now --from=cronjob/paktum-scraper" in out
    assert "ReadWriteOnce" in out


@pytest.mark.parametrize(
    "values",
    [
        "--set=api.replicas=2",
        "--set=scraper.schedule=often",
        "--set=search.backend=es",
        "--set=scraper.sources.mybooru.api_key=abc",  # credentials belong in a Secret, not in values
        "--set=scraper.sources.mybooru.api=shimmie",
        "--set=api.scrapeJobs.enabled=true",  # removed: a stale values file should fail, not be ignored
    ],
)
def test_bad_values_are_refused(helm: str, values: str) -> None:
    done = subprocess.run([helm, "template", "paktum", str(CHART), values], capture_output=True, text=True)
    assert done.returncode != 0 and "schema" in done.stderr.lower()


def test_every_service_has_a_workload(render: Render) -> None:
    assert {component(o) for o in workloads(render())} >= set(SERVICES)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "http://127.0.0.1:8080"),  # the port-forward NOTES prints
        (("--set=api.ingress.enabled=true", "--set=api.ingress.hostname=pics.example"), "http://pics.example"),
        (("--set=api.ingress.enabled=true", "--set=api.ingress.tls=true"), "https://paktum.local"),
        (("--set=api.ingress.enabled=true", "--set=config.publicUrl=https://p.example/x"), "https://p.example/x"),
    ],
    ids=["port-forward", "ingress", "ingress-tls", "public-url"],
)
def test_links_have_a_base_the_chart_names(
    render: Callable[..., list[Manifest]], args: tuple[str, ...], expected: str
) -> None:
    """The api never builds links from a client's Host: every install tells it where it is reached."""
    api = find(render(*args), "Deployment", "paktum-api")
    assert env_of(containers(api)[0])["PAKTUM_PUBLIC_URL"] == expected
    assert "PAKTUM_TRUSTED_PROXIES" not in env_of(containers(api)[0])


def test_trusted_proxies_reach_the_api(render: Render) -> None:
    objects = render("--set=config.trustedProxies={10.0.0.0/8,192.168.1.7}")
    api = find(objects, "Deployment", "paktum-api")
    env = env_of(containers(api)[0])
    assert env["PAKTUM_TRUSTED_PROXIES"] == "10.0.0.0/8 192.168.1.7"
    assert Settings(trusted_proxies=env["PAKTUM_TRUSTED_PROXIES"]).trusted_proxies == ["10.0.0.0/8", "192.168.1.7"]
