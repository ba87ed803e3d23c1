"""GraphQL object types. Names are the original Paktum's, so its clients keep working unchanged."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.types import Info

from paktum_api.graphql.execution import prefetched
from paktum_common.contracts import ImageDocument
from paktum_common.contracts import Rating as DomainRating

if TYPE_CHECKING:
    from paktum_api.graphql.context import Context


@strawberry.enum(
    name="Rating",
    description="The safety rating. general is safe for work; safe may show some skin; "
    "questionable and explicit are not.",
)
class RatingValue(enum.Enum):
    explicit = "explicit"
    questionable = "questionable"
    safe = "safe"
    general = "general"

    def domain(self) -> DomainRating:
        return DomainRating(self.value)


@strawberry.enum(
    name="Transform",
    description="How a related image shows this one: none (as is, or flattened on another background), mirror "
    "(left and right swapped), flip (top and bottom swapped), rot90 / rot180 / rot270 (turned counter-clockwise "
    "by that many degrees), transpose / transverse (mirrored along a diagonal).",
)
class TransformValue(enum.Enum):
    none = "none"
    mirror = "mirror"
    flip = "flip"
    rot90 = "rot90"
    rot180 = "rot180"
    rot270 = "rot270"
    transpose = "transpose"
    transverse = "transverse"


# By value, looked up: calling an enum class costs more than the rest of a related image's Transform.
_TRANSFORMS = {member.value: member for member in TransformValue}


def transform_value(transform: str | None) -> TransformValue | None:
    return None if transform is None else _TRANSFORMS.get(transform) or TransformValue(transform)


_RATINGS = {DomainRating(member.value): member for member in RatingValue}


@strawberry.type
class _ImageFields:
    # Not a schema type itself (no field returns it): Image and NestedImage share its fields.
    ID: str = strawberry.field(description="The MD5 of the file, in hex.")
    Url: str = strawberry.field(description="The direct link to our copy of the file.")
    ThumbnailUrl: str = strawberry.field(description="A thumbnail: ours, or a signed imgproxy URL when configured.")
    ThumbnailSrcset: str = strawberry.field(
        description="The thumbnails for an <img srcset>: the smaller and the default size, with their widths."
    )
    Tags: list[str]
    Tagstring: str = strawberry.field(description="The tags separated by spaces.")
    Rating: RatingValue
    Added: str = strawberry.field(description="When it was indexed, in UNIX seconds.")
    PHash: str = strawberry.field(
        description="The unsigned 64-bit perceptual hash in decimal; compare by Hamming distance."
    )
    Size: int = strawberry.field(description="Size in bytes.")
    Width: int
    Height: int
    Filename: str
    Source: str = strawberry.field(description="The site it was scraped from (or `local`).")
    SourceID: str = strawberry.field(description="The post's ID on the source site (a local file: its path).")
    SourceUrl: str = strawberry.field(description="The post's page on the source site, if known.")

    @classmethod
    def fields_from(cls, doc: ImageDocument, links: tuple[str, str], srcset: str) -> dict[str, Any]:
        return {
            "ID": doc.ID,
            "Url": links[0],
            "ThumbnailUrl": links[1],
            "ThumbnailSrcset": srcset,
            "Tags": list(doc.Tags),
            "Tagstring": doc.Tagstring,
            "Rating": _RATINGS[doc.Rating],
            "Added": doc.Added,
            "PHash": str(doc.PHash),
            "Size": doc.Size,
            "Width": doc.Width,
            "Height": doc.Height,
            "Filename": doc.Filename,
            "Source": doc.Source,
            "SourceID": doc.SourceID,
            "SourceUrl": doc.SourceURL,
        }


@strawberry.type(description="An image nested in another's answer: every field of Image but Related.")
class NestedImage(_ImageFields):
    Distance: int | None = strawberry.field(
        default=None,
        description="In Related: how many bits differ from the image it is related to (pHash bits; symmetric-hash bits "
        "when either picture is symmetric, such as a star).",
    )
    Transform: TransformValue | None = strawberry.field(
        default=None, description="In Related: how this image shows the one it is related to (mirrored, rotated...)."
    )


@strawberry.type(description="A full image with all available metadata.")
class Image(_ImageFields):
    @strawberry.field(
        description="Variants of this image (perceptual hashes within PAKTUM_VARIANT_DISTANCE bits), nearest first.",
        metadata=prefetched("related"),  # fetched with the page: then completed without calling this resolver
    )
    def Related(self, info: Info[Any, None]) -> list[NestedImage]:
        if self.related is not None:  # fetched with the page it is on (Context.images)
            return self.related
        # Info[Any, ...]: the Context module imports this one, and strawberry resolves annotations at run time.
        context: Context = info.context
        # The loader's future, which graphql-core awaits: every image of the answer in one batch.
        return context.related.load(self.ID)  # type: ignore[return-value]

    related: strawberry.Private[list[NestedImage] | None] = None


@strawberry.type(description="One page of a search, with the total number of hits.")
class ImageSearch:
    Images: list[Image]
    Total: int = strawberry.field(description="How many images match, on all pages.")
    Page: int
    HasMore: bool = strawberry.field(description="Whether a later page has more images.")


@strawberry.type(description="A tag and how many images have it.")
class TagCount:
    Name: str
    Count: int


@strawberry.type
class ServerStats:
    Version: str
    ImageCount: int
    GroupCount: int
    Uptime: str = strawberry.field(description="How long this api has been running, like 26h3m12s.")


@strawberry.type(description="How a scrape request is doing, whether a Kubernetes Job or the stream consumer runs it.")
class ScrapeStatus:
    ID: str
    Status: str = strawberry.field(description="pending, running, done or failed.")
    Reason: str = strawberry.field(description="Why it failed (the queries that failed, or the Job's condition).")
    Found: int = strawberry.field(description="Posts the source listed (known once it is done or failed).")
    Published: int = strawberry.field(description="New posts handed to the hasher.")
    QueryErrors: int
    Job: str = strawberry.field(description="The Kubernetes Job carrying it out; empty for the stream consumer.")
