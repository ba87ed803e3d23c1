"""Per-request GraphQL context: the shared state, the request's base URL and token, and the data loaders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fastapi import Request
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from paktum_api.graphql.types import Image, NestedImage, transform_value
from paktum_api.state import AppState
from paktum_common.contracts import ImageDocument
from paktum_common.groups import Related, related_details


class Context(BaseContext):
    def __init__(self, state: AppState, base_url: str, authorization: str | None) -> None:
        super().__init__()
        self.state = state
        self.base_url = base_url
        self.authorization = authorization
        # One loader per request: every Related in one answer is fetched in one batch, and never cached across users.
        self.related: DataLoader[str, list[NestedImage]] = DataLoader(load_fn=self._load_related)

    def image(self, doc: ImageDocument) -> Image:
        return Image(**Image.fields_from(doc, *self._links(doc)))

    def nested(self, doc: ImageDocument, distance: int | None = None, transform: str | None = None) -> NestedImage:
        fields = NestedImage.fields_from(doc, *self._links(doc))
        return NestedImage(**fields, Distance=distance, Transform=transform_value(transform))

    def _links(self, doc: ImageDocument) -> tuple[tuple[str, str], str]:
        return self.state.links(doc, self.base_url), self.state.srcset(doc, self.base_url)

    async def _load_related(self, ids: Sequence[str]) -> list[list[NestedImage]]:
        # One related_details call and one index read for every Related in the answer, however many images it has.
        groups = await related_details(self.state.redis, list(ids))
        wanted = list(dict.fromkeys(r.md5 for image_id in ids for r in groups.get(image_id, [])))
        docs = await self.state.search.get_documents(wanted) if wanted else {}
        return [
            [self.nested(doc, r.distance, r.transform) for doc, r in found] for found in nest_related(ids, groups, docs)
        ]


def nest_related(
    ids: Sequence[str], groups: Mapping[str, list[Related]], docs: Mapping[str, ImageDocument]
) -> list[list[tuple[ImageDocument, Related]]]:
    """For each ID in order, its related documents with how they relate, in the groups' order (nearest first).

    A member the index no longer has (deleted since grouping) is left out rather than shown broken.
    """
    return [[(docs[r.md5], r) for r in groups.get(image_id, []) if r.md5 in docs] for image_id in ids]


async def get_context(request: Request) -> Context:
    state: AppState = request.app.state.paktum
    return Context(state, state.base_url(request), request.headers.get("authorization"))
