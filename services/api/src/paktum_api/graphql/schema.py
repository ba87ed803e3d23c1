"""The Query and Mutation roots, and the schema with its depth, cost and error-masking limits."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import strawberry
from graphql import GraphQLError
from redis.exceptions import RedisError
from strawberry.extensions import MaskErrors
from strawberry.fastapi import GraphQLRouter
from strawberry.file_uploads import Upload
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, Info
from strawberry.types.base import get_object_definition
from strawberry.types.graphql import OperationType

from paktum_api import admin, edits, similar
from paktum_api.graphql.context import Context, get_context
from paktum_api.graphql.execution import execution_context_class
from paktum_api.graphql.field_metrics import RootFieldMetrics
from paktum_api.graphql.http import GraphQLPost
from paktum_api.graphql.types import Image, ImageSearch, NestedImage, RatingValue, ScrapeStatus, ServerStats, TagCount
from paktum_api.graphql.uploads import UploadedFile, UploadingGraphQLRouter, upload_images, upload_status
from paktum_api.limits import LIMIT_MAX, DocumentCache, DocumentGuard, DocumentLimits, analysis_pool
from paktum_api.tags import tag_counts
from paktum_common import __version__
from paktum_common.contracts import TagEdit
from paktum_common.errors import InvalidQueryError, PaktumError, TransientError
from paktum_common.groups import group_stats
from paktum_common.search import Order, SearchPage, SearchQuery, parse_query

log = logging.getLogger("paktum.api")

MAX_PAGE = 10_000  # deep offsets are slow on every backend; order:added with a numeric filter reaches further


def _limit(limit: int) -> int:
    if not 1 <= limit <= LIMIT_MAX:
        raise InvalidQueryError(f"limit must be between 1 and {LIMIT_MAX}, got {limit}")
    return limit


def _query(text: str, rating: RatingValue | None, default_order: Order) -> SearchQuery | None:
    """The parsed query with the `rating` argument applied; None when the two ask for disjoint ratings."""
    query = parse_query(text, default_order)
    if rating is None:
        return query
    if query.ratings and rating.domain() not in query.ratings:
        return None
    return replace(query, ratings=(rating.domain(),))


async def _search(info: Info[Context, None], query: SearchQuery | None, limit: int, page: int = 1) -> SearchPage:
    if not 1 <= page <= MAX_PAGE:
        raise InvalidQueryError(f"page must be between 1 and {MAX_PAGE}, got {page}")
    if query is None:
        return SearchPage([], 0)
    return await info.context.state.search.search(query, limit, (page - 1) * limit)


def _uptime(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{secs}s"


async def _server_stats(info: Info[Context, None]) -> ServerStats:
    state = info.context.state
    admin.check_admin(state, info.context.authorization)
    return ServerStats(
        Version=__version__,
        ImageCount=await state.search.count(),
        GroupCount=(await group_stats(state.redis)).groups,
        Uptime=_uptime(time.time() - state.started),
    )


def _admin_edit(
    info: Info[Context, None], add: list[str] | None, remove: list[str] | None, rating: RatingValue | None
) -> tuple[TagEdit, str | None]:
    """The edit asked for, checked, and the admin token that asks (for the log's fingerprint)."""
    admin.check_admin(info.context.state, info.context.authorization)
    return edits.tag_edit(add, remove, rating.value if rating else None), admin.bearer(info.context.authorization)


@strawberry.type
class Query:
    @strawberry.field(description="Retrieves an image by its ID.")
    async def image(self, info: Info[Context, None], ID: str) -> Image | None:
        doc = await info.context.state.search.get_document(ID.strip().lower())
        return info.context.image(doc) if doc else None

    @strawberry.field(description="Retrieve an entirely random image (every image equally likely).")
    async def randomImage(self, info: Info[Context, None]) -> Image:
        page = await info.context.state.search.search(SearchQuery(order=Order.random), 1)
        if not page.hits:
            raise PaktumError("no images are indexed yet")
        return info.context.image(page.hits[0])

    @strawberry.field(
        description='Search with the query language (`a -b ~c ~d e* rating:s,q width:>1000 "words" order:-added`). '
        "Limit must be 0 < limit <= 100. Shuffle (default true) returns a uniform random sample of all hits; "
        "false returns the newest first. An `order:` term in the query wins over shuffle."
    )
    async def searchImages(
        self,
        info: Info[Context, None],
        query: str,
        limit: int,
        shuffle: bool | None = True,
        rating: RatingValue | None = None,
    ) -> list[Image]:
        order = Order.added_desc if shuffle is False else Order.random
        page = await _search(info, _query(query, rating, order), _limit(limit))
        return await info.context.images(page.hits, info)

    @strawberry.field(description="One page (from 1) of a search, newest first unless the query has an `order:` term.")
    async def paginatedSearch(
        self, info: Info[Context, None], query: str, limit: int, page: int, rating: RatingValue | None = None
    ) -> list[Image]:
        found = await _search(info, _query(query, rating, Order.added_desc), _limit(limit), page)
        return await info.context.images(found.hits, info)

    @strawberry.field(
        description="Like paginatedSearch, with the total number of hits. "
        "Shuffle (default false) gives a random sample instead, a new one on each page."
    )
    async def imageSearch(
        self,
        info: Info[Context, None],
        query: str,
        limit: int,
        page: int = 1,
        shuffle: bool = False,
        rating: RatingValue | None = None,
    ) -> ImageSearch:
        order = Order.random if shuffle else Order.added_desc
        found = await _search(info, _query(query, rating, order), _limit(limit), page)
        images = await info.context.images(found.hits, info, within="Images")
        return ImageSearch(Images=images, Total=found.total, Page=page, HasMore=page * limit < found.total)

    @strawberry.field(description="Tags starting with `prefix`, most used first, with how many images have each.")
    async def tags(self, info: Info[Context, None], prefix: str, limit: int = 10) -> list[TagCount]:
        counts = await tag_counts(info.context.state.search, prefix, limit)
        return [TagCount(Name=count.name, Count=count.count) for count in counts]

    @strawberry.field(
        description="The indexed images nearest to a picture, nearest first, each with its Distance and Transform: "
        "the picture at `url` (downloaded, never indexed) or the indexed image `ID`. distance 0-12 (default "
        "PAKTUM_VARIANT_DISTANCE), limit 1-100 (default 20)."
    )
    async def similarImages(
        self,
        info: Info[Context, None],
        url: str | None = None,
        ID: str | None = None,
        distance: int | None = None,
        limit: int | None = None,
    ) -> list[NestedImage]:
        found = await similar.similar_to(info.context.state, url, ID, distance, limit)
        return [info.context.nested(f.doc, f.distance, f.transform) for f in found]

    @strawberry.field(name="ServerStats", description="Server statistics; needs the admin token.")
    async def server_stats(self, info: Info[Context, None]) -> ServerStats:
        return await _server_stats(info)

    @strawberry.field(name="serverStats", description="ServerStats, as one published client spells it.")
    async def server_stats_lower(self, info: Info[Context, None]) -> ServerStats:
        return await _server_stats(info)

    @strawberry.field(description="How a scrape request (startScrape's ID) is doing; needs the admin token.")
    async def scrapeStatus(self, info: Info[Context, None], ID: str) -> ScrapeStatus:
        admin.check_admin(info.context.state, info.context.authorization)
        p = await admin.scrape_status(info.context.state, ID)
        return ScrapeStatus(
            ID=p.request, Status=p.status, Reason=p.reason, Found=p.found, Published=p.published,
            QueryErrors=p.query_errors, Job=p.job,
        )  # fmt: skip

    @strawberry.field(description="How an upload that answered `pending` went; needs the admin or upload token. "
                      "Null when no upload of this ID is known.")  # fmt: skip
    async def uploadStatus(self, info: Info[Context, None], ID: str) -> UploadedFile | None:
        return await upload_status(info.context.state, info.context.authorization, ID)


@strawberry.type(description="Admin actions; each needs the admin token (Authorization: Bearer <token>).")
class Mutation:
    @strawberry.mutation(
        description="Ask the scraper to scrape these tag queries (tags separated by spaces), from `source` or all "
        "configured sources. Returns the request's ID (see scrapeStatus). On Kubernetes it starts a Job; a "
        "`requestId` of your own (lowercase letters, digits, '-') makes a repeated call start nothing new."
    )
    async def startScrape(
        self, info: Info[Context, None], queries: list[str], source: str | None = None, requestId: str | None = None
    ) -> str:
        admin.check_admin(info.context.state, info.context.authorization)
        return await admin.request_scrape(info.context.state, queries, source, requestId)

    @strawberry.mutation(
        description="Delete an image everywhere (index, files, variant groups); false if there was no such image. "
        "With `ban` (the default) it never comes back: the scraper skips the file and the hasher refuses it and "
        "re-uploads of the picture. `ban: false` lets a later scrape or import bring it back."
    )
    async def deleteImage(self, info: Info[Context, None], ID: str, ban: bool = True) -> bool:
        admin.check_admin(info.context.state, info.context.authorization)
        return await admin.delete_image(info.context.state, ID, ban)

    @strawberry.mutation(
        description="Ban a tag: new posts with it are skipped and the cleanup job purges indexed ones. Returns the tag."
    )
    async def banTag(self, info: Info[Context, None], tag: str) -> str:
        admin.check_admin(info.context.state, info.context.authorization)
        return await admin.ban_tag(info.context.state, tag)

    @strawberry.mutation(description="Lift a ban made with banTag; false if the tag was not banned that way.")
    async def unbanTag(self, info: Info[Context, None], tag: str) -> bool:
        admin.check_admin(info.context.state, info.context.authorization)
        return await admin.unban_tag(info.context.state, tag)

    @strawberry.mutation(description="Mark two images as not variants of each other, so grouping never links them.")
    async def markNotVariants(self, info: Info[Context, None], ID: str, OtherID: str) -> bool:
        admin.check_admin(info.context.state, info.context.authorization)
        return (await admin.not_variants(info.context.state, ID, OtherID)).newly_marked

    @strawberry.mutation(
        description="Edit an image's tags and rating; returns it as it is now. The edit is remembered: a later "
        "scrape or import of the same file adds its tags but never undoes the edit. Tags are normalised like "
        "scraped ones (lower case, spaces to _); at most 100 added and removed together."
    )
    async def updateImage(
        self,
        info: Info[Context, None],
        ID: str,
        addTags: list[str] | None = None,
        removeTags: list[str] | None = None,
        rating: RatingValue | None = None,
    ) -> Image:
        edit, token = _admin_edit(info, addTags, removeTags, rating)
        return info.context.image(await edits.update_image(info.context.state, ID, edit, token))

    @strawberry.mutation(
        description="The same edit for every image a search finds (the search language, as in imageSearch); "
        "returns how many images changed."
    )
    async def updateImages(
        self,
        info: Info[Context, None],
        query: str,
        addTags: list[str] | None = None,
        removeTags: list[str] | None = None,
        rating: RatingValue | None = None,
    ) -> int:
        edit, token = _admin_edit(info, addTags, removeTags, rating)
        return await edits.update_images(info.context.state, query, edit, token)

    @strawberry.mutation(
        description="Upload images (the GraphQL multipart request spec: `operations`, `map`, then the file parts; "
        "headers Authorization: Bearer <admin or upload token> and GraphQL-Preflight: 1). Each file takes the "
        "path of every image; per file its ID and indexed, exists, refused (why) or pending after `wait` seconds "
        "(default 5, at most 30; uploadStatus tells the rest). Same limits as POST /api/upload."
    )
    async def uploadImages(
        self,
        info: Info[Context, None],
        files: list[Upload],
        tags: list[str] | None = None,
        rating: RatingValue | None = None,
        sourceUrl: str | None = None,
        wait: float | None = None,
    ) -> list[UploadedFile]:
        state, authorization = info.context.state, info.context.authorization
        domain = rating.domain() if rating else None
        return await upload_images(state, authorization, files, tags, domain, sourceUrl, wait)


REDIS_DOWN = "redis unavailable: try again in a moment"


def _unexpected(error: GraphQLError) -> bool:
    # Our own errors carry a message meant for the user, and so does graphql's about a variable it cannot
    # coerce (an unknown enum value); anything else may leak internals.
    original = error.original_error
    return original is not None and not isinstance(original, PaktumError | GraphQLError)


class PaktumMaskErrors(MaskErrors):
    """Mask unexpected errors, but say so when it is Redis that is away: the client can retry that."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        if isinstance(error.original_error, RedisError):
            masked.message = REDIS_DOWN
        return masked


class PaktumSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # A bad query or a missing token is the user's to fix: only unexpected errors are worth a traceback.
        for error in errors:
            if isinstance(error.original_error, RedisError):
                log.warning("graphql field failed: %s", REDIS_DOWN)
            elif _unexpected(error):
                log.error("graphql error", exc_info=error.original_error)
        # A change that failed because Redis or the index is away (or an edit waited too long for another) is a 503,
        # which clients and proxies retry; a query keeps its 200 with whatever part of the answer it could give.
        if execution_context is None or execution_context.graphql_document is None:
            return  # refused before it ran
        if not any(isinstance(e.original_error, RedisError | TransientError) for e in errors):
            return
        response = getattr(execution_context.context, "response", None)
        if response is not None and execution_context.operation_type is OperationType.MUTATION:
            response.status_code = 503


def build_schema(limits: DocumentLimits) -> strawberry.Schema:
    root_fields = frozenset(
        field.name for root in (Query, Mutation) for field in get_object_definition(root, strict=True).fields
    )
    pool = analysis_pool()  # shared by the requests, so a flood of documents waits rather than piles up
    documents = DocumentCache()  # shared too: a document seen before is neither parsed nor validated again
    schema = PaktumSchema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=False),
        # Factories, so each request gets its own extension instances.
        extensions=[
            lambda: DocumentGuard(limits, pool, documents),
            lambda: RootFieldMetrics(root_fields),
            lambda: PaktumMaskErrors(
                should_mask_error=_unexpected, error_message="internal error; the server log has the details"
            ),
        ],
    )
    schema.execution_context_class = execution_context_class(schema._schema)
    return schema


def graphql_router(limits: DocumentLimits) -> tuple[GraphQLRouter[Any, None], GraphQLPost]:
    """The router for /query, and the route that takes its POSTs ahead of every other route (GraphQLPost)."""
    schema = build_schema(limits)
    router = UploadingGraphQLRouter(schema, path="/query", graphql_ide="graphiql", context_getter=get_context)
    return router, GraphQLPost("/query", router, get_context)
