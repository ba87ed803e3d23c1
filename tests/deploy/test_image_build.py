"""Replay each Dockerfile's build stage without a container engine: the same files copied, the same uv commands.

No engine runs here, so the image itself is never built; this proves the part most likely to break when the
workspace changes: that the lock file installs the service from exactly what the Dockerfile copies, that the
result does not lean on the copied sources afterwards, and that it holds that service and no other.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, SERVICES
from tests.deploy.test_files import stages


def build_steps(service: str) -> tuple[dict[str, str], list[tuple[str, str]], list[list[str]]]:
    """The build stage's ENV, COPY (source, destination) pairs and RUN uv commands, in order."""
    build = stages(service)[0]
    env = dict(re.findall(r"(UV_\w+)=(\S+)", " ".join(re.findall(r"(?m)^ENV (.*)$", build))))
    copies = []
    for line in re.findall(r"(?m)^COPY (?!--)(.*)$", build):
        *sources, destination = line.split()
        copies += [(source, destination) for source in sources]
    runs = [
        [part for part in shlex.split(command) if not part.startswith("--mount=")]
        for command in re.findall(r"(?m)^RUN (.*uv sync.*)$", build)
    ]
    return env, copies, runs


def makefile_uv_version() -> str:
    found = re.search(r"(?m)^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text())
    assert found
    return found.group(1)


@pytest.mark.parametrize("service", SERVICES)
def test_the_build_stage_installs_the_service_alone_from_the_lock(service: str, tmp_path: Path) -> None:
    uv = ROOT / ".tools" / "bin" / "uv"
    if not uv.is_file():
        pytest.skip("uv is not bootstrapped (.tools/bin/uv); `make sync` does that")
    dockerfile = (ROOT / "services" / service / "Dockerfile").read_text()
    assert f"ARG UV_VERSION={makefile_uv_version()}" in dockerfile, "the image must use the uv the Makefile pins"
    env, copies, runs = build_steps(service)
    assert env["UV_PROJECT_ENVIRONMENT"] == "/opt/paktum" and len(runs) == 2
    source, venv = tmp_path / "src", tmp_path / "venv"
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
    for command in runs:
        assert command[:2] == ["uv", "sync"]
        done = subprocess.run([str(uv), *command[1:]], cwd=source, env=run_env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    shutil.rmtree(source)  # the final image gets the venv only
    assert (venv / "bin" / f"paktum-{service}").is_file()
    probe = (
        "import importlib.util, sys\n"
        f"import paktum_{service}.main\n"
        "for name in ('paktum_api', 'paktum_hasher', 'paktum_cleanup', 'paktum_scraper'):\n"
        "    print(name, importlib.util.find_spec(name) is not None)\n"
    )
    done = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    installed = {line.split()[0] for line in done.stdout.splitlines() if line.endswith("True")}
    assert installed == {f"paktum_{service}"}, "an image holds its own service and the common library, nothing else"
