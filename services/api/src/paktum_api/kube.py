"""startScrape on Kubernetes: a Job made from the scraper CronJob, as `kubectl create job --from` makes it."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from paktum_common.errors import PaktumError
from paktum_common.settings import Settings

# A request ID becomes the tail of a Job name (DNS-1123 label, at most 63 characters with the CronJob's name).
REQUEST_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
CRONJOB_PREFIX_MAX = 30  # 30 + "-" + 32 = 63
CONTAINER = "scraper"  # the container in the CronJob's pod template that a request's environment goes into
MANUAL = {"cronjob.kubernetes.io/instantiate": "manual"}
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

JobPhase = Literal["pending", "running", "done", "failed"]


class KubeError(PaktumError):
    """The Kubernetes API refused a call or could not be reached; the message says which and why."""


class KubeForbiddenError(KubeError):
    """The api's ServiceAccount may not do this (its Role is missing or narrower than the chart's)."""


class KubeUnavailableError(KubeError):
    """No answer from the API server in time, or no connection."""


class ScrapeJobConflictError(KubeError):
    """A Job of that name exists but was made for another request."""


def check_request_id(request_id: str) -> str:
    if not REQUEST_ID.fullmatch(request_id):
        raise PaktumError(
            f"not a request ID: {request_id!r} (1 to 32 characters: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return request_id


def job_name(cronjob: str, request_id: str) -> str:
    """`<cronjob>-<request ID>`: a DNS-1123 label of at most 63 characters, the same for the same request."""
    return f"{cronjob[:CRONJOB_PREFIX_MAX].rstrip('-')}-{check_request_id(request_id)}"


def job_from_cronjob(cronjob: dict[str, Any], name: str, env: dict[str, str], ttl_seconds: int) -> dict[str, Any]:
    """The Job `kubectl create job <name> --from=cronjob/<cronjob>` would create, with `env` set in the scraper
    container (replacing entries of the same name) and a ttlSecondsAfterFinished when the template has none.

    kubectl's rules: the annotation `cronjob.kubernetes.io/instantiate: manual`, then the job template's own
    annotations over it; the job template's labels; an ownerReference to the CronJob (controller); the job
    template's spec as it is.
    """
    meta = cronjob["metadata"]
    template = cronjob["spec"]["jobTemplate"]
    template_meta = template.get("metadata") or {}
    job_meta: dict[str, Any] = {
        "name": name,
        "namespace": meta["namespace"],
        "annotations": {**MANUAL, **(template_meta.get("annotations") or {})},
        "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "CronJob", "name": meta["name"], "uid": meta["uid"], "controller": True}
        ],
    }
    if template_meta.get("labels"):
        job_meta["labels"] = dict(template_meta["labels"])
    spec = copy.deepcopy(template["spec"])
    spec.setdefault("ttlSecondsAfterFinished", ttl_seconds)
    containers = spec["template"]["spec"]["containers"]
    container = next((c for c in containers if c["name"] == CONTAINER), containers[0])
    kept = [entry for entry in container.get("env", []) if entry["name"] not in env]
    container["env"] = kept + [{"name": key, "value": value} for key, value in env.items()]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": spec}


def request_env(job: dict[str, Any]) -> dict[str, str]:
    """The literal environment of a Job's scraper container (what a request put there)."""
    containers = job["spec"]["template"]["spec"]["containers"]
    container = next((c for c in containers if c["name"] == CONTAINER), containers[0])
    return {entry["name"]: entry["value"] for entry in container.get("env", []) if "value" in entry}


@dataclass(frozen=True)
class JobState:
    """Where a scrape Job is, from its status: pending (no pod running yet), running, done, failed (and why)."""

    name: str
    phase: JobPhase
    reason: str = ""

    @classmethod
    def from_job(cls, job: dict[str, Any]) -> JobState:
        status = job.get("status") or {}
        name = job["metadata"]["name"]
        for condition in status.get("conditions") or []:
            if condition.get("status") != "True":
                continue
            if condition.get("type") == "Failed":
                why = ": ".join(part for part in (condition.get("reason"), condition.get("message")) if part)
                return cls(name, "failed", why or "the Job failed")
            if condition.get("type") == "Complete":
                return cls(name, "done")
        if status.get("active"):
            return cls(name, "running")
        return cls(name, "pending")


class ScrapeJobs:
    """Creates and reads scrape Jobs through the official client; its blocking calls run in a worker thread,
    each bounded by PAKTUM_KUBE_TIMEOUT_SECONDS and never retried behind the caller's back."""

    def __init__(self, settings: Settings) -> None:
        from kubernetes import client, config  # the api image alone carries the client
        from urllib3.exceptions import HTTPError

        configuration = client.Configuration()
        try:
            if settings.kube_config:
                config.load_kube_config(config_file=settings.kube_config, client_configuration=configuration)
            else:
                config.load_incluster_config(client_configuration=configuration)
        except (config.ConfigException, OSError) as exc:
            where = settings.kube_config or "the in-cluster service account"
            raise KubeError(f"PAKTUM_SCRAPE_JOB_CRONJOB is set but {where} gives no Kubernetes API: {exc}") from exc
        configuration.retries = 0  # one try per call: a slow server costs one timeout, not four
        self._exception = client.ApiException
        self._unreachable = (HTTPError, OSError)  # timeouts, refused connections, broken answers
        self._batch = client.BatchV1Api(client.ApiClient(configuration))
        self.cronjob = settings.scrape_job_cronjob
        self.namespace = settings.scrape_job_namespace or _own_namespace()
        self.timeout = settings.kube_timeout_seconds
        self.ttl_seconds = settings.scrape_job_ttl_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> ScrapeJobs | None:
        """None when startScrape is not a Job here (PAKTUM_SCRAPE_JOB_CRONJOB empty: the Redis stream)."""
        return cls(settings) if settings.scrape_job_cronjob else None

    async def start(self, request_id: str, env: dict[str, str]) -> JobState:
        """Create the request's Job; the same request again answers with the Job it made the first time."""
        name = job_name(self.cronjob, request_id)
        cronjob = await self._call(
            f"read CronJob {self.cronjob}", self._batch.read_namespaced_cron_job, self.cronjob, self.namespace
        )
        body = job_from_cronjob(cronjob, name, env, self.ttl_seconds)
        try:
            created = await self._call(
                f"create Job {name}", self._batch.create_namespaced_job, self.namespace, body, conflict_ok=True
            )
        except _Conflict:
            existing = await self._call(f"read Job {name}", self._batch.read_namespaced_job, name, self.namespace)
            if request_env(existing).get("PAKTUM_SCRAPE_REQUEST_ID") != request_id:
                raise ScrapeJobConflictError(f"a Job named {name} exists and is not this request's") from None
            return JobState.from_job(existing)
        return JobState.from_job(created)

    async def state(self, request_id: str) -> JobState | None:
        """The request's Job as it is now; None when there is none (never made, or deleted after its TTL)."""
        name = job_name(self.cronjob, request_id)
        try:
            job = await self._call(f"read Job {name}", self._batch.read_namespaced_job, name, self.namespace)
        except _Missing:
            return None
        return JobState.from_job(job)

    async def _call(self, what: str, method: Any, *args: Any, conflict_ok: bool = False) -> dict[str, Any]:
        """Run one client call off the event loop; its JSON answer, or a KubeError saying what went wrong."""

        def blocking() -> Any:
            return method(*args, _request_timeout=self.timeout, _preload_content=False)

        try:
            response = await asyncio.to_thread(blocking)
        except self._exception as exc:
            status = exc.status or 0
            detail = _status_message(exc.body) or exc.reason or ""
            if status == 409 and conflict_ok:
                raise _Conflict from None
            if status == 404:
                raise _Missing(f"{what}: not found in namespace {self.namespace} ({detail})") from None
            if status in (401, 403):
                raise KubeForbiddenError(f"{what}: refused by the Kubernetes API ({status}: {detail})") from None
            raise KubeError(f"{what}: the Kubernetes API answered {status}: {detail}") from None
        except self._unreachable as exc:
            raise KubeUnavailableError(f"{what}: no answer from the Kubernetes API: {type(exc).__name__}") from exc
        try:
            answer: dict[str, Any] = json.loads(response.data)
        except ValueError as exc:
            raise KubeError(f"{what}: the Kubernetes API answered something that is not JSON") from exc
        return answer


class _Conflict(Exception):
    """A create met an existing object of that name (409)."""


class _Missing(KubeError):
    """404: the object does not exist."""


def _status_message(body: Any) -> str:
    """The `message` of a Kubernetes Status answer, when the body is one."""
    try:
        return str(json.loads(body).get("message", ""))
    except (TypeError, ValueError, AttributeError):
        return ""


def _own_namespace() -> str:
    try:
        return NAMESPACE_FILE.read_text().strip()
    except OSError as exc:
        raise KubeError(
            "PAKTUM_SCRAPE_JOB_NAMESPACE is empty and this is not a pod (no service-account namespace)"
        ) from exc
