"""GraphQL documents sent again are parsed and validated once, and every limit still holds for them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from paktum_common.settings import Settings
from tests.integration.apiserver import serve

PAGE = 'query Page($n: Int!) { searchImages(query: "cat", limit: $n) { ID Related { ID } } }'  # 1 + n * 22


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    with serve(settings.model_copy(update={"graphql_max_cost": 1000})) as client:
        yield client


def documents(api: httpx.Client) -> dict[str, float]:
    found = re.findall(r'^paktum_api_graphql_documents_total\{cache="(\w+)"\} (\S+)$', api.get("/metrics").text, re.M)
    return {cache: float(value) for cache, value in found}


def send(api: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> tuple[Any, dict[str, float]]:
    """The answer, and how the document counts moved while it was answered."""
    before = documents(api)
    answer = api.post("/query", json={"query": query, "variables": variables or {}})
    assert answer.status_code == 200, answer.text
    after = documents(api)
    return answer.json(), {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}


def test_a_repeated_document_is_remembered_and_priced_for_its_own_variables(api: httpx.Client) -> None:
    first, moved = send(api, PAGE, {"n": 5})
    assert first == {"data": {"searchImages": []}} and moved == {"miss": 1}
    again, moved = send(api, PAGE, {"n": 5})
    assert again == first and moved == {"hit": 1}
    # The same text with a larger limit: remembered, yet priced again, and refused (1 + 100 * 22 > 1000).
    refused, moved = send(api, PAGE, {"n": 100})
    assert moved == {"hit": 1}
    assert [e["message"] for e in refused["errors"]] == [
        "query cost 2201 is above the limit of 1000: "
        "ask for fewer images (a smaller limit), fewer aliases, fewer nested fields or fragment spreads"
    ]
    assert send(api, PAGE, {"n": 100})[0] == refused  # and refused every time
    assert send(api, PAGE, {"n": 5})[0] == first


def test_a_refused_document_stays_refused_when_sent_again(api: httpx.Client) -> None:
    aliases = "{ " + " ".join(f"a{n}: __typename" for n in range(30)) + " }"
    answers = [send(api, aliases) for _ in range(3)]
    assert [moved for _, moved in answers] == [{"miss": 1}, {"hit": 1}, {"hit": 1}]
    refused = {"data": None, "errors": [{"message": "30 aliases found. Allowed: 20"}]}
    assert all(answer == refused for answer, _ in answers)


def test_validation_errors_are_remembered_and_given_each_time(api: httpx.Client) -> None:
    wrong = '{ searchImages(query: "cat", limit: 3) { NoSuchField } }'
    first, _ = send(api, wrong)
    second, moved = send(api, wrong)
    assert moved == {"hit": 1} and second == first
    assert "Cannot query field 'NoSuchField' on type 'Image'." in first["errors"][0]["message"]


def test_a_syntax_error_is_reported_each_time(api: httpx.Client) -> None:
    for _ in range(2):
        answer, moved = send(api, "{ searchImages(")
        assert moved == {"miss": 1}  # nothing to remember: it never parsed
        assert "Syntax Error" in answer["errors"][0]["message"]
