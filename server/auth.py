"""Bearer authentication as Litestar dependencies.

`principal` requires a valid access token; `viewer` is the same but optional (public
reads); `actor` is `principal` plus the per-user write limit. A present but bad token is
always a 401, never a silent downgrade to anonymous: a client with a stale token must
learn it has to refresh.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from domain.errors import Unauthorized
from domain.services.auth import Principal
from server.di import PrincipalDep, ServicesDep

# An access token is ~300 bytes; anything far longer is not one of ours and is refused
# before it reaches the JWT library.
MAX_TOKEN_CHARS = 4096


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The token of an `Authorization: Bearer` header; None when there is no header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized("expected 'Authorization: Bearer <token>'", code="invalid_token")
    return token


async def provide_viewer(
    request: Request[Any, Any, Any], services: ServicesDep
) -> Principal | None:
    token = bearer_token(request)
    if token is None:
        return None
    return await services.auth.authenticate(token)


async def provide_principal(request: Request[Any, Any, Any], services: ServicesDep) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("authentication required", code="unauthenticated")
    return await services.auth.authenticate(token)


async def provide_actor(principal: PrincipalDep, services: ServicesDep) -> Principal:
    services.limits.writes.hit(str(principal.user_id))
    return principal


def client_ip(request: Request[Any, Any, Any]) -> str:
    # The socket peer: proxy headers are off by default (uvicorn), so X-Forwarded-For
    # cannot be forged to dodge the per-IP limits.
    client = request.client
    return client.host if client is not None else "unknown"
