"""What the REST routes answer, for the OpenAPI schema: every status, body shape, parameter and media type."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from paktum_common.contracts import MEDIA_TYPES, ImageDocument


class RestImage(ImageDocument):
    """An image as the REST API shows it: the document with its links."""

    URL: str
    ThumbnailURL: str


class ErrorAnswer(BaseModel):
    error: str


class SearchAnswer(BaseModel):
    results: list[RestImage]
    error: str
    total_hits: int


class ImageAnswer(BaseModel):
    image: RestImage | None
    error: str


class RelatedAnswer(BaseModel):
    results: list[str]
    distances: list[int]
    transforms: list[str]
    error: str


class SimilarAnswer(BaseModel):
    results: list[RestImage]
    distances: list[int]
    transforms: list[str]
    error: str


SIMILAR_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["url"],
                "properties": {"url": {"type": "string", "format": "uri"}},
            }
        },
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}


class NotVariantsAnswer(BaseModel):
    a: str
    b: str
    newly_marked: bool
    still_grouped: bool
    error: str


class ScrapeAnswer(BaseModel):
    """scrapeStatus's figures (`request`, `status`, `reason`, `found`, `published`, ...) and `error`."""

    model_config = ConfigDict(extra="allow")
    error: str


class UploadedFile(BaseModel):
    filename: str
    ID: str  # the file's md5; empty when it was refused before it was read whole
    status: str  # indexed, exists, refused or pending
    reason: str  # why it was refused


class UploadAnswer(BaseModel):
    files: list[UploadedFile]
    error: str


class UploadStatusAnswer(BaseModel):
    ID: str
    status: str
    reason: str
    error: str


class ReadyAnswer(BaseModel):
    status: str
    problems: dict[str, Any] = {}


REASONS = {
    400: "A parameter or the body is malformed; `error` says which and why",
    401: "The admin token is missing or wrong",
    403: "Admin features are off (PAKTUM_ADMIN_TOKEN is not set)",
    404: "No such image",
    409: "The two IDs are the same image",
    413: "The request body is larger than PAKTUM_API_MAX_BODY_BYTES",
    502: "The Kubernetes API refused the request",
    503: "The search index or Redis is unavailable; try again",
    504: "The Kubernetes API did not answer",
}


def answers(model: type[BaseModel], *statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a JSON route: every error status with the route's own body shape."""
    return {status: {"model": model, "description": REASONS[status]} for status in statuses}


def query_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    # Declared here rather than in the signature: the route checks the text itself and answers in its own shape.
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _binary(types: list[str]) -> dict[str, Any]:
    return {t: {"schema": {"type": "string", "format": "binary"}} for t in types}


def _file_answers(types: list[str]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"description": "The file", "content": _binary(types)},
        206: {"description": "The requested byte range", "content": _binary(types)},
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
        404: {"description": "No such file", "model": ErrorAnswer},
        416: {"description": "The range is outside the file"},
    }


IMAGE_FILE = _file_answers(sorted({media.content_type for media in MEDIA_TYPES.values()}))
THUMBNAIL_FILE = _file_answers(["image/jpeg"])


def configured(schema: dict[str, Any], variant_distance: int, upload_max_files: int = 20) -> dict[str, Any]:
    """The schema with the bounds that depend on settings filled in (the routes are declared before settings)."""
    related = schema["paths"]["/api/image/{image_id}/related"]["get"]
    for parameter in related.get("parameters", []):
        if parameter["name"] == "distance":
            parameter["schema"]["maximum"] = variant_distance
            parameter["description"] = f"Keep those within this many bits, 0 to {variant_distance}"
    upload = schema["paths"]["/api/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    upload["properties"]["file"]["maxItems"] = upload_max_files
    return schema
