"""How a scrape request from the stream is read: its queries, its sources, and what is refused."""

from __future__ import annotations

import pytest

from paktum_common.queue import Delivery
from paktum_scraper.scrape_requests import ScrapeRequestError, ScrapeWork


@pytest.mark.parametrize(
    ("fields", "default", "queries", "sources"),
    [
        pytest.param({"queries": "hug\ncat_ears solo", "source": ""}, ["gelbooru"], [["hug"], ["cat_ears", "solo"]],
                     ["gelbooru"], id="default-source"),
        pytest.param({"queries": "hug", "source": "danbooru"}, ["gelbooru"], [["hug"]], ["danbooru"],
                     id="named-source"),
        pytest.param({"queries": "hug", "source": " e621, yandere "}, [], [["hug"]], ["e621", "yandere"],
                     id="several-sources"),
        pytest.param({"queries": "\n# a comment\nhug  # why\n\n"}, ["safebooru"], [["hug"]], ["safebooru"],
                     id="comments-and-blank-lines"),
    ],
)  # fmt: skip
def test_requests_are_read(
    fields: dict[str, str], default: list[str], queries: list[list[str]], sources: list[str]
) -> None:
    request = ScrapeWork.from_delivery(Delivery("1-0", fields, 1), default)
    assert (request.queries, request.sources) == (queries, sources)


@pytest.mark.parametrize(
    ("fields", "default", "reason"),
    [
        pytest.param({"queries": "", "source": ""}, ["gelbooru"], "no tag queries", id="empty-queries"),
        pytest.param({"queries": "# nothing\n  \n"}, ["gelbooru"], "no tag queries", id="only-comments"),
        pytest.param({}, ["gelbooru"], "no tag queries", id="deleted-entry"),
        pytest.param({"queries": "hug", "source": " , "}, [], "names no source", id="no-source-anywhere"),
    ],
)  # fmt: skip
def test_unusable_requests_are_refused_with_the_reason(fields: dict[str, str], default: list[str], reason: str) -> None:
    with pytest.raises(ScrapeRequestError, match=reason):
        ScrapeWork.from_delivery(Delivery("1-0", fields, 1), default)
