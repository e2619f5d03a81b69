"""The dependencies every handler may ask for by name, and their annotations.

`services` (the container on app.state), `page` (the paging query parameters) and the
auth trio: `principal` requires a valid access token; `viewer` is the same but optional
(public reads); `actor` is `principal` plus one token of the caller's write budget. A
present but bad token is always a 401, never a silent downgrade to anonymous: a client
with a stale token must learn it has to refresh.

Litestar 3 stops inferring dependencies from parameter names; the `*Dep` aliases say it.
"""

from __future__ import annotations

from typing import Any, TypeAlias, cast

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from domain.errors import Unauthorized
from domain.pagination import PageRequest
from domain.services.auth import Principal
from server import proxies
from server.container import Services
from server.pagination import provide_page

ServicesDep: TypeAlias = NamedDependency[Services]
# A valid access token (401 otherwise).
PrincipalDep: TypeAlias = NamedDependency[Principal]
# A valid access token plus one token of the caller's write budget (429 when spent).
ActorDep: TypeAlias = NamedDependency[Principal]
# An optional token: None when absent, 401 when present but bad.
ViewerDep: TypeAlias = NamedDependency[Principal | None]
PageDep: TypeAlias = NamedDependency[PageRequest]

# An access token is ~300 bytes; anything far longer is not one of ours and is refused
# before it reaches the JWT library.
MAX_TOKEN_CHARS = 4096


def parse_bearer(header: str) -> str:
    """The token of an `Authorization: Bearer <token>` header value (REST and the
    WebSocket upgrade alike); Unauthorized(invalid_token) for anything else."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized("expected 'Authorization: Bearer <token>'", code="invalid_token")
    return token


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The request's bearer token; None when there is no Authorization header."""
    header = request.headers.get("authorization")
    return None if header is None else parse_bearer(header)


def client_ip(request: Request[Any, Any, Any], services: Services) -> str:
    """The client's IP for per-IP limits: the TCP peer, or what a trusted proxy says it
    saw (PLAZA_TRUSTED_PROXIES); from anyone else X-Forwarded-For is ignored, so it cannot
    be forged to dodge the limits."""
    return proxies.client_ip(request.scope, services.settings.trusted_proxies) or "unknown"


def provide_services(state: State) -> Services:
    return cast(Services, state.services)


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
    await services.limits.writes.hit(str(principal.user_id))
    return principal


DEPENDENCIES = {
    "services": Provide(provide_services, sync_to_thread=False),
    "page": Provide(provide_page, sync_to_thread=False),
    "viewer": Provide(provide_viewer),
    "principal": Provide(provide_principal),
    "actor": Provide(provide_actor),
}
