"""The OpenAPI contract's shared parts: error responses, security, constraints, the docs UI.

Handlers declare what they can answer with `responses=errors(...)` and who may call them
with `security=`; the shapes behind those names live here, once. The schema describes
what the server does (server.errors, domain.validation, domain.ids), so a client
generated from it parses every reply, and `make test` fuzzes the server against it.

The docs UI (Swagger UI) is served from the `swagger-ui-py` package's copy of the
swagger-ui-dist files: the page loads nothing from another host and runs no inline script.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import FromPath, PathParameter, QueryParameter
from litestar.plugins import OpenAPISchemaPlugin
from litestar.response import File

from domain import validation
from domain.ids import ID_PATTERN
from server.errors import ErrorEnvelope
from server.images import CONTENT_TYPES

if TYPE_CHECKING:
    from litestar import Router
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import SecurityRequirement
    from litestar.typing import FieldDefinition

BEARER_SCHEME = "bearer"
# An access token is required.
BEARER: list[SecurityRequirement] = [{BEARER_SCHEME: []}]
# Public reads: anonymous, or with a token (then a bad one is a 401, never ignored).
OPTIONAL_BEARER: list[SecurityRequirement] = [{}, {BEARER_SCHEME: []}]
# Register, login, refresh, health: no token at all.
PUBLIC: list[SecurityRequirement] = [{}]

# What each error status means in Plaza; the body is always the error envelope.
_MEANINGS = {
    400: "Malformed request: the body is not valid JSON or not parseable multipart",
    401: "No access token, or one that is expired, revoked or not ours (invalid_token)",
    403: "Not allowed for this user",
    404: "No such resource, or not visible to the caller",
    409: "Conflict: the username or email is taken",
    413: "The body is larger than the server accepts",
    415: "The upload is not a PNG, JPEG, WebP or GIF image",
    422: "Well-formed but invalid input (details names the field)",
    429: "Rate limited: retry after Retry-After seconds",
    503: "A dependency (database, broker) is down: retry after Retry-After seconds",
    507: "The server cannot store the upload now",
}

# Statuses any body-carrying operation can answer: bad JSON, too large, invalid fields.
BODY = (400, 413, 422)
# A path id that is malformed (422) or names nothing visible (404).
BY_ID = (404, 422)
# Writes spend the caller's write budget.
WRITE = (401, 429)


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """`responses=` for a handler: the given statuses, each with the error envelope, plus
    503 (every operation but /health needs the database). 400 is always there: Litestar
    documents a 400 for any operation with parameters, and this gives it our shape."""
    return {
        status: ResponseSpec(
            data_container=ErrorEnvelope,
            description=_MEANINGS[status],
            generate_examples=False,
        )
        for status in sorted({400, 503, *statuses})
    }


def decimal_id(description: str) -> Any:
    """A path id: a decimal string (64-bit ids lose precision as JavaScript numbers).
    Documentation only: `parse_id` stays the one parser, with its own messages."""
    return PathParameter(description=description, schema_extra={"pattern": ID_PATTERN})


PostId = Annotated[str, decimal_id("A post id")]
UserId = Annotated[str, decimal_id("A user id")]
MediaId = Annotated[str, decimal_id("A media id")]

# Text fields as domain.validation checks them: a NUL is never valid (PostgreSQL text
# cannot hold it), and posts and comments need one character that is not whitespace.
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"


def text(max_chars: int, pattern: str) -> msgspec.Meta:
    """A string field's documented constraints (domain.validation enforces them; msgspec
    does not, so the messages stay the domain's)."""
    extra: dict[str, Any] = {"max_length": max_chars, "pattern": pattern}
    return msgspec.Meta(extra_json_schema={"extra": extra})


def pattern(regex: str, description: str | None = None) -> msgspec.Meta:
    return msgspec.Meta(extra_json_schema={"description": description, "extra": {"pattern": regex}})


def id_list(max_items: int) -> msgspec.Meta:
    """A list of ids in a body, at most `max_items` (documented; the domain checks)."""
    item = Schema(type=OpenAPIType.STRING, pattern=ID_PATTERN)
    return msgspec.Meta(extra_json_schema={"extra": {"max_items": max_items, "items": item}})


PostText = Annotated[str, text(validation.POST_MAX_CHARS, NOT_BLANK)]
CommentText = Annotated[str, text(validation.COMMENT_MAX_CHARS, NOT_BLANK)]
DisplayName = Annotated[str, text(validation.DISPLAY_NAME_MAX, NO_NUL)]
Bio = Annotated[str, text(validation.BIO_MAX, NO_NUL)]
IdString = Annotated[str, pattern(ID_PATTERN, "A decimal id string")]
# Folded to lower case and trimmed before the check, so "  Alice " is alice.
USERNAME_PATTERN = "^\\s*[A-Za-z0-9_]{3,30}\\s*$"
# domain.validation.EMAIL_RE on printable ASCII: the schema never admits an address the
# server refuses (it also refuses control characters), at the cost of not advertising
# addresses with non-ASCII characters, which the server takes.
EMAIL_PATTERN = "^\\s*[!-?A-~]{1,64}@[!-?A-~]+\\.[!-?A-~]{2,}\\s*$"
# domain.validation.password counts UTF-8 bytes (8-1024), which a schema cannot state: 8
# characters are always at least 8 bytes, so a client that keeps to minLength is never
# refused for length, though the server also takes e.g. four 2-byte characters.
NewPassword = Annotated[
    str,
    msgspec.Meta(
        extra_json_schema={
            "description": "8 to 1024 bytes of UTF-8",
            "extra": {"min_length": validation.PASSWORD_MIN_BYTES},
        }
    ),
]
# 1-255 printable characters (headers are ASCII).
IDEMPOTENCY_KEY_PATTERN = f"^[ -~]{{1,{validation.IDEMPOTENCY_KEY_MAX}}}$"
Username = Annotated[str, pattern(USERNAME_PATTERN, "3-30 of a-z, 0-9 and _ (case folded)")]
Email = Annotated[str, pattern(EMAIL_PATTERN)]


# GET /search?q=: whitespace runs count as one space; blank is refused.
SEARCH_QUERY = QueryParameter(
    name="q",
    description="Words to look for",
    schema_extra={"max_length": validation.SEARCH_QUERY_MAX, "pattern": NOT_BLANK},
)


class ClosedStructSchemaPlugin(OpenAPISchemaPlugin):
    """Request bodies refuse unknown fields (`forbid_unknown_fields=True`, a 422): their
    schemas say so with `additionalProperties: false`. Other structs are left to
    Litestar's own struct plugin."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return (
            not field_definition.is_union
            and field_definition.is_subclass_of(msgspec.Struct)
            and bool(field_definition.type_.__struct_config__.forbid_unknown_fields)
        )

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        # Litestar's own struct plugin builds the schema (it is not exported, hence the
        # private import); only additionalProperties is added.
        from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin

        schema = StructSchemaPlugin().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        return schema


@dataclass
class ImageOperation(Operation):
    """GET /media/{id}: the 200 is the image's bytes, in the type it was stored as."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.content = {
                content_type: OpenAPIMediaType(
                    schema=Schema(content_media_type=content_type, description="The image")
                )
                for content_type in sorted(set(CONTENT_TYPES.values()))
            }


@dataclass
class OptionalBodyOperation(Operation):
    """An operation whose JSON body may be left out (Litestar marks every body required)."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


# --- the docs UI, offline ----------------------------------------------------------------

ASSETS = "assets"
# The files of swagger-ui-dist the page uses, and its licence (Apache-2.0).
_ASSET_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain",
}

# Plaza's own start-up script for the page: a file, not inline, so the page's CSP can
# forbid inline script. It reads the schema from the JSON route beside the page.
_INIT_JS = b"""\
window.addEventListener("load", function () {
  var page = document.getElementById("swagger-container");
  window.ui = SwaggerUIBundle({
    url: page.dataset.schemaUrl,
    dom_id: "#swagger-container",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  });
});
"""


def swagger_ui_dir() -> Path:
    return Path(str(files("swagger_ui") / "static"))


class LocalSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI with its scripts, styles and favicon served by Plaza under
    `<schema path>/assets/`, and no inline script."""

    def __init__(self, schema_path: str) -> None:
        self.assets_url = f"{schema_path}/{ASSETS}"
        super().__init__(
            js_url=f"{self.assets_url}/swagger-ui-bundle.js",
            css_url=f"{self.assets_url}/swagger-ui.css",
            standalone_preset_js_url=f"{self.assets_url}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' href='{self.assets_url}/favicon-32x32.png'>",
            style=f"<link href='{self.assets_url}/page.css' rel='stylesheet'>",
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = str(openapi_schema["info"]["title"])
        schema_url = self.get_openapi_json_route(request)
        return f"""<!DOCTYPE html>
<html>
  <head>
    <title>{title}</title>
    {self.favicon}
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <link href="{self.css_url}" rel="stylesheet">
    {self.style}
    <script src="{self.js_url}"></script>
    <script src="{self.standalone_preset_js_url}"></script>
    <script src="{self.assets_url}/init.js"></script>
  </head>
  <body>
    <div id="swagger-container" data-schema-url="{schema_url}"></div>
  </body>
</html>""".encode()

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(get(f"/{ASSETS}/{{name:str}}", sync_to_thread=False)(docs_asset))


def docs_asset(name: FromPath[str]) -> Response[bytes] | File:
    """One file of the docs page; nothing else of the package's folder is reachable."""
    if name == "init.js":
        return Response(_INIT_JS, media_type="text/javascript")
    if name == "page.css":
        return Response(b"body { margin: 0; padding: 0 }\n", media_type="text/css")
    media_type = _ASSET_FILES.get(name)
    if media_type is None:
        raise NotFoundException()
    return File(swagger_ui_dir() / name, media_type=media_type, content_disposition_type="inline")
