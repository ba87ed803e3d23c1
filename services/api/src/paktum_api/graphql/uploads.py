"""GraphQL uploads at /query (the GraphQL multipart request spec: `operations`, `map`, then the file parts).

One implementation, two front doors: the body streams through POST /api/upload's parser into the same staging
folder under the same limits, and `uploadImages` publishes and answers with the same code (paktum_api.upload).
Strawberry's own multipart handling (request.form(), which spools without our limits) stays off.

A multipart POST is a "simple" request a browser sends cross-site without asking, so before a byte is read it
must carry `Authorization: Bearer` with the admin or upload token (a header no form can set; a cookie never
counts) and one of the preflight headers Apollo and the spec's CSRF advice name. Whatever the request staged
and did not publish is removed when it ends, whatever the outcome.
"""

from __future__ import annotations

import enum
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import strawberry
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from fastapi import Request, Response, WebSocket
from strawberry.file_uploads import Upload
from strawberry.http import GraphQLRequestData
from strawberry.http.typevars import Context, RootValue
from strawberry.types.unset import UNSET

from paktum_api import upload
from paktum_api.admin import bearer
from paktum_api.body_limit import RequestTooLargeError
from paktum_api.graphql.http import PaktumGraphQLRouter, checked_json, graphql_error
from paktum_api.state import AppState
from paktum_api.upload_form import FIELD_MAX_BYTES, Staged, UploadParser, UploadRefusedError
from paktum_common.contracts import Rating, normalize_tags
from paktum_common.errors import NotAuthorizedError

PREFLIGHT_HEADERS = ("graphql-preflight", "apollo-require-preflight", "x-apollo-operation-name")
SPEC = "the GraphQL multipart request spec"
NOT_MULTIPART = f"a GraphQL upload is multipart/form-data: `operations`, `map`, then the file parts ({SPEC})"

_CURRENT: ContextVar[SpecUpload | None] = ContextVar("paktum_graphql_upload", default=None)


@dataclass
class SpecUpload:
    """One multipart request to /query: its parser (the staged files) and its map, checked as it streams."""

    request: Request
    parser: UploadParser
    files_map: dict[str, list[str]] = field(default_factory=dict)
    mapped: bool = False

    def check_file(self, name: str) -> None:
        """A file part is welcome only after `operations` and `map`, once, and named in the map."""
        if "operations" not in self.parser.fields or "map" not in self.parser.fields:
            raise UploadRefusedError(400, f"`operations` and `map` come before the file parts ({SPEC})")
        self.read_map()
        if name not in self.files_map:
            raise UploadRefusedError(400, f"the file part {name!r} is not in `map`")
        if any(staged.name == name for staged in self.parser.files):
            raise UploadRefusedError(400, f"the file part {name!r} is sent twice")

    def read_map(self) -> None:
        if self.mapped:
            return
        self.mapped = True
        value = _json(self.parser.fields.get("map", "{}"), "map")
        limit = self.parser.settings.upload_max_files
        if not isinstance(value, dict) or not all(_is_paths(paths) for paths in value.values()):
            raise UploadRefusedError(400, '`map` must be a JSON object like {"0": ["variables.files.0"]}')
        if len(value) > limit:
            raise UploadRefusedError(400, f"at most {limit} files per upload (PAKTUM_UPLOAD_MAX_FILES)")
        for paths in value.values():
            for path in paths:
                if not path.startswith("variables."):
                    raise UploadRefusedError(400, f"a file can only be a variable: `map` path {path!r}")
        self.files_map = value

    def finish(self) -> None:
        """After the body: every file the map names was sent, and there are operations."""
        if "operations" not in self.parser.fields:
            raise UploadRefusedError(400, f"no `operations` field ({SPEC})")
        self.read_map()
        sent = {staged.name for staged in self.parser.files}
        missing = [name for name in self.files_map if name not in sent]
        if missing:
            raise UploadRefusedError(400, f"`map` names file parts the request does not have: {missing[:5]}")

    def place(self, variables: dict[str, Any] | None) -> dict[str, Any]:
        """The operation's variables with each staged file where the map puts it (on a null placeholder)."""
        placed = dict(variables or {})
        by_name = {staged.name: staged for staged in self.parser.files}
        for name, paths in self.files_map.items():
            for path in paths:
                _put(placed, path, by_name[name])
        return placed


def _is_paths(paths: object) -> bool:
    return isinstance(paths, list) and bool(paths) and all(isinstance(path, str) for path in paths)


def _json(text: str, name: str) -> Any:
    try:
        return checked_json(text)
    except HTTPException as exc:
        raise UploadRefusedError(400, f"`{name}`: {exc.reason}") from None


def _put(variables: dict[str, Any], path: str, staged: Staged) -> None:
    *steps, last = path.split(".")[1:]
    target: Any = variables
    try:
        for step in steps:
            target = target[int(step)] if isinstance(target, list) else target[step]
        key: Any = int(last) if isinstance(target, list) else last
        if not isinstance(target, dict | list) or target[key] is not None:
            raise TypeError
        target[key] = staged
    except (KeyError, IndexError, ValueError, TypeError):
        raise HTTPException(400, f"`map` path {path!r} is not a null placeholder in the variables") from None


def _is_multipart_post(request: Request) -> bool:
    return request.method == "POST" and "multipart/" in request.headers.get("content-type", "").lower()


async def read_upload(state: AppState, request: Request) -> SpecUpload:
    """Check who asks and how, then stream the body into staging under the upload limits."""
    problem = upload.uploader_problem(state.settings, bearer(request.headers.get("authorization")))
    if problem is not None:
        raise UploadRefusedError(*problem)
    if not any(request.headers.get(name, "").strip() for name in PREFLIGHT_HEADERS):
        headers = ", ".join(PREFLIGHT_HEADERS)
        raise UploadRefusedError(400, f"a multipart request needs one of the headers {headers} (CSRF prevention)")
    boundary = upload.boundary_of(request, NOT_MULTIPART)
    limits = {"operations": state.settings.api_max_body_bytes, "map": FIELD_MAX_BYTES}
    form = SpecUpload(request, UploadParser(state.settings, boundary, field_limits=limits))
    form.parser.check_file = form.check_file
    await upload.stage(request, form.parser)
    try:
        form.finish()
    except BaseException:
        form.parser.discard()
        raise
    return form


class _OperationsBody(StarletteRequestAdapter):
    """The request as the JSON router sees it: its body is the `operations` field, checked like any JSON body."""

    def __init__(self, request: Request, operations: str) -> None:
        super().__init__(request)
        self.operations = operations.encode("utf-8")

    @property
    def content_type(self) -> str:
        return "application/json"

    async def get_body(self) -> bytes:
        return self.operations


class UploadingGraphQLRouter(PaktumGraphQLRouter):
    async def run(  # type: ignore[override]
        self,
        request: Request | WebSocket,
        context: Context = UNSET,
        root_value: RootValue | None = UNSET,
    ) -> Response | WebSocket:
        if not isinstance(request, Request) or not _is_multipart_post(request):
            return await super().run(request, context, root_value)
        try:
            form = await read_upload(request.app.state.paktum, request)
        except UploadRefusedError as exc:
            return _closing(graphql_error(exc.status, str(exc)))
        except RequestTooLargeError as exc:
            return _closing(graphql_error(413, str(exc)))
        token = _CURRENT.set(form)
        # Strawberry keeps the request's sub-response on the router; other requests ran while this body streamed.
        sub_response = getattr(context, "response", None)
        if isinstance(sub_response, Response):
            self.temporal_response = sub_response
        try:
            return await super().run(request, context, root_value)
        finally:
            _CURRENT.reset(token)
            form.parser.discard()  # what no uploadImages published

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData | list[GraphQLRequestData]:
        form = _CURRENT.get()
        if form is None:
            return await super().parse_http_body(request)
        data = await super().parse_http_body(_OperationsBody(form.request, form.parser.fields["operations"]))
        assert isinstance(data, GraphQLRequestData)  # a list is refused by the JSON body's own checks
        data.variables = form.place(data.variables)
        return data


def _closing(response: Response) -> Response:
    response.headers["Connection"] = "close"  # the unread rest of the body may still be on its way
    return response


@strawberry.enum(name="UploadStatus", description="What became of an uploaded file.")
class UploadStatusValue(enum.Enum):
    indexed = "indexed"
    exists = "exists"
    refused = "refused"
    pending = "pending"


@strawberry.type(description="One uploaded file: its ID (MD5) and status; `reason` says why it was refused.")
class UploadedFile:
    filename: str
    ID: str
    status: UploadStatusValue
    reason: str


def uploaded(result: upload.FileResult) -> UploadedFile:
    return UploadedFile(
        filename=result.filename, ID=result.id, status=UploadStatusValue(result.status), reason=result.reason
    )


def check_uploader(state: AppState, authorization: str | None) -> None:
    problem = upload.uploader_problem(state.settings, bearer(authorization))
    if problem is not None:
        raise NotAuthorizedError(problem[1])


def _staged_files(files: list[Upload]) -> list[Staged]:
    form = _CURRENT.get()
    own = {id(staged) for staged in form.parser.files} if form is not None else set()
    if not all(isinstance(item, Staged) and id(item) in own for item in files):
        raise UploadRefusedError(400, f"`files` are file parts of a multipart request ({SPEC})")
    unique: list[Staged] = list({id(staged): staged for staged in files if isinstance(staged, Staged)}.values())
    if any(staged.published for staged in unique):
        raise UploadRefusedError(400, "a file part can be uploaded once per request")
    if not unique:
        raise UploadRefusedError(400, "no file to upload")
    return unique


async def upload_images(
    state: AppState,
    authorization: str | None,
    files: list[Upload],
    tags: list[str] | None,
    rating: Rating | None,
    source_url: str | None,
    wait: float | None,
) -> list[UploadedFile]:
    """uploadImages: the files this request staged, published with the same checks as POST /api/upload."""
    check_uploader(state, authorization)
    staged = _staged_files(files)
    link = upload.checked_source_url(source_url or "")
    seconds = upload.checked_wait(upload.WAIT_DEFAULT if wait is None else wait)
    results = await upload.publish_staged(state, staged, normalize_tags(tags or []), rating or Rating.general, link)
    return [uploaded(result) for result in await upload.outcomes(state, results, seconds)]


async def upload_status(state: AppState, authorization: str | None, image_id: str) -> UploadedFile | None:
    check_uploader(state, authorization)
    md5 = image_id.strip().lower()
    found = await upload.upload_status(state, md5)
    if found is None:
        return None
    return UploadedFile(filename="", ID=md5, status=UploadStatusValue(found[0]), reason=found[1])
