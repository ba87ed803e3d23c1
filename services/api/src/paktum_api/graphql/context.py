"""Per-request GraphQL context: the shared state, the request's base URL and token, and the data loaders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext
from strawberry.types import Info

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

    def image(self, doc: ImageDocument, related: list[NestedImage] | None = None) -> Image:
        return Image(**Image.fields_from(doc, *self._links(doc)), related=related)

    async def images(self, docs: Sequence[ImageDocument], info: Info[Any, None], within: str = "") -> list[Image]:
        """A page of images; when the query asks for their `Related` (inside `within`, if given), fetched now.

        At once, in one batch for the page: each image's `Related` is then a plain value, where leaving it to
        the data loader costs an awaitable per image, most of what `Related` added to a page.
        """
        path = (within, "Related") if within else ("Related",)
        if not docs or not asks_for(info, path):
            return [self.image(doc) for doc in docs]
        related = await self._load_related([doc.ID for doc in docs])
        return [self.image(doc, nested) for doc, nested in zip(docs, related, strict=True)]

    def nested(self, doc: ImageDocument, distance: int | None = None, transform: str | None = None) -> NestedImage:
        fields = NestedImage.fields_from(doc, *self._links(doc))
        return NestedImage(**fields, Distance=distance, Transform=transform_value(transform))

    def _links(self, doc: ImageDocument) -> tuple[tuple[str, str], str]:
        links = self.state.links(doc, self.base_url)
        return links, self.state.srcset(doc, self.base_url, links[1])  # the thumbnail made (and signed) once

    async def _load_related(self, ids: Sequence[str]) -> list[list[NestedImage]]:
        # One related_details call and one index read for every Related in the answer, however many images it has.
        groups = await related_details(self.state.redis, list(ids))
        wanted = list(dict.fromkeys(r.md5 for image_id in ids for r in groups.get(image_id, [])))
        docs = await self.state.search.get_documents(wanted) if wanted else {}
        return [
            [self.nested(doc, r.distance, r.transform) for doc, r in found] for found in nest_related(ids, groups, docs)
        ]


def asks_for(info: Info[Any, None], path: Sequence[str]) -> bool:
    """Whether the field being resolved selects the field at `path` (field names, one level each; fragments
    looked into, directives not: asking too eagerly only fetches what is then left out).

    From graphql-core's own nodes: strawberry's `selected_fields` converts the whole selection, arguments and
    directives included, on every call.
    """
    raw = info._raw_info
    return _selects([node.selection_set for node in raw.field_nodes], raw.fragments, path)


def _selects(
    selection_sets: Sequence[SelectionSetNode | None], fragments: Mapping[str, Any], path: Sequence[str]
) -> bool:
    for selection_set in selection_sets:
        for selection in selection_set.selections if selection_set is not None else ():
            if isinstance(selection, FieldNode):
                if selection.name.value == path[0] and (
                    len(path) == 1 or _selects([selection.selection_set], fragments, path[1:])
                ):
                    return True
            elif isinstance(selection, InlineFragmentNode):
                if _selects([selection.selection_set], fragments, path):
                    return True
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None and _selects([fragment.selection_set], fragments, path):
                    return True
    return False


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
