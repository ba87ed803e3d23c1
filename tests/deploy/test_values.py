"""values.yaml and the CI values files against values.schema.json; needs no helm, so it runs everywhere."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import CHART, CI_VALUES, KUSTOMIZE, ROOT

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())


def merged(overrides: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of a values file over the defaults: maps merge, everything else replaces."""

    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            return {k: merge(base.get(k), v) for k, v in over.items()} | {
                k: v for k, v in base.items() if k not in over
            }
        return copy.deepcopy(over)

    result: dict[str, Any] = merge(DEFAULTS, overrides)
    return result


def validate(values: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(values)


def test_the_schema_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(
    "path",
    [*sorted(CI_VALUES.glob("*.yaml")), KUSTOMIZE / "base-values.yaml"],
    ids=lambda p: p.name,
)
def test_values_files_validate(path: Any) -> None:
    validate(merged(yaml.safe_load(path.read_text()) or {}))


def test_defaults_validate() -> None:
    validate(DEFAULTS)


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"api": {"replicas": 2}}, "replicas"),
        ({"hasher": {"autoscaling": {"targetCPU": 50}}}, "targetCPU"),
        ({"scraper": {"schedule": "every hour"}}, "every hour"),
        ({"scraper": {"queries": ["two\nlines"]}}, "two"),
        ({"search": {"backend": "elasticsearch"}}, "elasticsearch"),
        ({"config": {"variantDistance": 65}}, "65"),
        ({"api": {"image": {"digest": "latest"}}}, "latest"),
        ({"persistence": {"images": {"accessModes": ["ReadWriteSometimes"]}}}, "ReadWriteSometimes"),
        ({"redis": {"external": {"url": "redis.example:6379"}}}, "redis.example"),
    ],
    ids=[
        "typo-top",
        "typo-nested",
        "bad-cron",
        "multiline-query",
        "unknown-backend",
        "distance",
        "digest",
        "mode",
        "url",
    ],
)
def test_the_schema_refuses_mistakes(override: dict[str, Any], where: str) -> None:
    with pytest.raises(jsonschema.ValidationError, match=where):
        validate(merged(override))


def test_no_secret_has_a_default() -> None:
    text = (CHART / "values.yaml").read_text().lower()
    for word in ("password:", "token:", "masterkey:", "salt:"):
        for line in text.splitlines():
            if word in line.replace(" ", "") and not line.strip().startswith("#"):
                # Only the key *names* inside the Secret may appear (auth.secretKeys), and blocks (auth.readToken:).
                assert line.split(":", 1)[1].strip() in {
                    "",
                    "read-token",
                    "upload-token",
                    "admin-token",
                    "imgproxy-salt",
                    "meilisearch-master-key",
                    "redis-password",
                }, line


def test_every_value_is_documented_in_the_chart_readme() -> None:
    readme = (CHART / "README.md").read_text()

    # Blocks passed to Kubernetes whole are documented as one value.
    whole = {"resources", "podSecurityContext", "securityContext", "labels"}

    def leaves(node: Any, prefix: str = "") -> list[str]:
        if isinstance(node, dict) and node and prefix.rstrip(".").rsplit(".", 1)[-1] not in whole:
            return [leaf for k, v in node.items() for leaf in leaves(v, f"{prefix}{k}.")]
        return [prefix.rstrip(".")]

    missing = [key for key in leaves(DEFAULTS) if f"`{key}`" not in readme]
    assert not missing, f"values missing from {CHART.relative_to(ROOT)}/README.md: {missing}"
