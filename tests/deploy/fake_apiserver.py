"""A Kubernetes API stand-in on loopback: discovery, and GET and create of namespaced objects, in the API's JSON.

There is no API server on these machines. Helm's `lookup` needs discovery and GETs of single objects; `kubectl
create job --from` and the api's scrape Jobs need a CronJob read and a Job created and read back. This answers
those (404, 403 and 409 as the API server words them) and records each call as RBAC sees it.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# (group, version, plural, kind): every kind the chart renders.
RESOURCES = [
    ("", "v1", "secrets", "Secret"),
    ("", "v1", "services", "Service"),
    ("", "v1", "serviceaccounts", "ServiceAccount"),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    ("", "v1", "configmaps", "ConfigMap"),
    ("apps", "v1", "deployments", "Deployment"),
    ("apps", "v1", "statefulsets", "StatefulSet"),
    ("batch", "v1", "cronjobs", "CronJob"),
    ("batch", "v1", "jobs", "Job"),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    ("networking.k8s.io", "v1", "ingresses", "Ingress"),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    ("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor"),
    ("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor"),
    ("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject"),
    ("keda.sh", "v1alpha1", "triggerauthentications", "TriggerAuthentication"),
]


def _resource_list(group: str, version: str) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [
            {"name": plural, "singularName": kind.lower(), "namespaced": True, "kind": kind, "verbs": ["get", "list"]}
            for g, v, plural, kind in RESOURCES
            if (g, v) == (group, version)
        ],
    }


OPTIONAL_GROUPS = ("monitoring.coreos.com", "keda.sh")  # served only where their CRDs are installed


def _routes(without: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    groups = sorted({(g, v) for g, v, _, _ in RESOURCES if g and g not in without})
    routes: dict[str, dict[str, Any]] = {
        "/version": {"major": "1", "minor": "35", "gitVersion": "v1.35.0"},
        "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
        "/api/v1": _resource_list("", "v1"),
        "/apis": {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                    "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                }
                for g, v in groups
            ],
        },
    }
    for g, v in groups:
        routes[f"/apis/{g}/{v}"] = _resource_list(g, v)
    return routes


@dataclass
class ApiCall:
    """One request as RBAC sees it: verb, API group, resource, name (empty for a create), namespace."""

    verb: str
    group: str
    resource: str
    name: str
    namespace: str


@dataclass
class FakeApiServer:
    """What a test sets and reads: stored objects by path, calls made, and faults to answer with."""

    url: str
    kubeconfig: Path
    objects: dict[str, dict[str, Any]]
    calls: list[ApiCall] = field(default_factory=list)
    forbidden: set[tuple[str, str]] = field(default_factory=set)  # (verb, resource) answered 403
    delay: float = 0.0  # seconds before every answer about cronjobs or jobs (a slow server)

    def stored(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(object_path(kind, namespace, name))


def object_path(kind: str, namespace: str, name: str = "") -> str:
    group, version, plural = next((g, v, p) for g, v, p, k in RESOURCES if k == kind)
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    return f"{base}/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")


_OBJECT = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?$"
)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}  # fmt: skip


def _stored(obj: dict[str, Any]) -> dict[str, Any]:
    """As the API server stores it: a uid, a creation time, a resourceVersion."""
    obj = json.loads(json.dumps(obj))
    meta = obj["metadata"]
    meta.setdefault("uid", str(uuid.uuid4()))
    meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
    meta.setdefault("resourceVersion", "1")
    return obj


@contextmanager
def serving(objects: list[dict[str, Any]], workdir: Path, without: tuple[str, ...] = ()) -> Iterator[FakeApiServer]:
    """Serve discovery (less the API groups in `without`), and GET, list and create of namespaced objects."""
    routes = _routes(without)
    store = {object_path(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): _stored(o) for o in objects}
    lock = threading.Lock()
    state: FakeApiServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _object(self, verb: str) -> tuple[str, ApiCall] | None:
            path = self.path.split("?")[0]
            found = _OBJECT.match(path)
            if not found:
                return None
            group = found["group"] or ""
            name = found["name"] or ""
            if verb == "get" and not name:
                verb = "list"
            call = ApiCall(verb, group, found["plural"], name, found["ns"])
            with lock:
                state.calls.append(call)
            if found["plural"] in ("cronjobs", "jobs") and state.delay:
                time.sleep(state.delay)
            return path, call

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path in routes:
                self._answer(200, routes[path])
                return
            target = self._object("get")
            if target is None:
                self._answer(404, _status(404, "NotFound", f"no route {path}"))
                return
            path, call = target
            if (call.verb, call.resource) in state.forbidden:
                self._answer(403, _status(403, "Forbidden", f"{call.resource} is forbidden: cannot {call.verb}"))
                return
            with lock:
                if call.verb == "list":
                    items = [o for p, o in store.items() if p.rsplit("/", 1)[0] == path]
                    body = {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}
                else:
                    body = store.get(path)
            if body is None:
                self._answer(404, _status(404, "NotFound", f'{call.resource} "{call.name}" not found'))
                return
            self._answer(200, body)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            target = self._object("create")
            if target is None:
                self._answer(404, _status(404, "NotFound", "no route"))
                return
            path, call = target
            if (call.verb, call.resource) in state.forbidden:
                self._answer(403, _status(403, "Forbidden", f"{call.resource} is forbidden: cannot create"))
                return
            name = body.get("metadata", {}).get("name", "")
            body.setdefault("metadata", {})["namespace"] = call.namespace
            with lock:
                if f"{path}/{name}" in store:
                    self._answer(409, _status(409, "AlreadyExists", f'{call.resource} "{name}" already exists'))
                    return
                store[f"{path}/{name}"] = created = _stored(body)
            self._answer(201, created)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_port}"
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": url}}],
                "users": [{"name": "fake", "user": {}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "media"}}],
                "current-context": "fake",
            }
        )
    )
    state = FakeApiServer(url, kubeconfig, store)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def fake_apiserver(objects: list[dict[str, Any]], workdir: Path) -> Iterator[Path]:
    """Serve `objects` and yield a kubeconfig pointing at them (what `helm --dry-run=server` needs)."""
    with serving(objects, workdir) as server:
        yield server.kubeconfig
