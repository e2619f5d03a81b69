"""POST /media (multipart upload of one image) and GET /media/{id} (its bytes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import MultipartBody

from domain.ids import parse_id
from domain.views import MediaView
from server.dependencies import ActorDep, ServicesDep
from server.openapi import BEARER, BODY, PUBLIC, WRITE, ImageOperation, MediaId, errors

# Multipart framing around the file (boundaries, part headers) is a few hundred bytes;
# 64 KiB of slack keeps a file of exactly the upload limit from being refused as a body.
MULTIPART_SLACK = 64 * 1024

# Media are content-addressed and never change under their id: cache them forever.
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass
class UploadIn:
    file: UploadFile


def upload_body_limit(max_upload_bytes: int) -> int:
    return max_upload_bytes + MULTIPART_SLACK


class MediaController(Controller):
    path = "/media"
    tags = ("media",)

    @post("/", security=BEARER, responses=errors(*BODY, *WRITE, 415, 507))
    async def upload(
        self,
        data: MultipartBody[UploadIn],
        actor: ActorDep,
        services: ServicesDep,
    ) -> Response[MediaView]:
        await services.limits.uploads.hit(str(actor.user_id))
        payload = await data.file.read()
        media = await services.media.upload(actor.user_id, payload)
        return Response(services.presenter.media(media), status_code=201)

    @get(
        "/{media_id:str}",
        cache=False,
        security=PUBLIC,
        operation_class=ImageOperation,
        responses={
            304: ResponseSpec(None, description="Not modified (If-None-Match)"),
            **errors(404, 422),
        },
    )
    async def fetch(
        self, request: Request[Any, Any, Any], media_id: MediaId, services: ServicesDep
    ) -> Response[bytes]:
        media = await services.media.get(parse_id(media_id, "media_id"))
        etag = f'"{media.sha256}"'
        headers = {
            "Cache-Control": IMMUTABLE,
            "ETag": etag,
            # Never let a browser guess the type: a stored file is only ever an image.
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=304, headers=headers)
        data = await services.media.read(media)
        return Response(data, media_type=media.content_type, headers=headers)
