"""The app factory: the one place that builds engines, backends and services and wires them.

    create_app(settings) -> Litestar

The lifespan opens storage (migrating first on SQLite, the embedded default), builds the
`Services` container, publishes it as `app.state.services`, runs the addons (the live
layer: WebSocket endpoint, outbox relay, consumers) and closes everything on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Protocol, cast

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from domain.ports import Publisher
from server.controllers.auth import AuthController
from server.controllers.health import HealthController
from server.controllers.media import MediaController, upload_body_limit
from server.controllers.posts import PostsController
from server.controllers.reading import FeedController, NotificationsController, SearchController
from server.controllers.users import UsersController
from server.deps import DEPENDENCIES
from server.errors import EXCEPTION_HANDLERS
from server.headers import security_headers
from server.media import PillowImageProcessor
from server.security.passwords import Argon2Hasher
from server.security.tokens import JwtAccessTokens
from server.services import Security, Services, StorageHandle, build_services
from server.settings import Settings

API_PREFIX = "/api/v1"
SCHEMA_PATH = f"{API_PREFIX}/schema"

ReadinessCheck = Callable[[], Awaitable[object]]


class Addon(Protocol):
    """A piece wired in beside REST: the live layer's WebSocket route and its relay.

    `route_handlers` are mounted under /api/v1 (e.g. a websocket handler at "/ws"); they
    reach the services as `app.state.services` (or the `services` dependency).
    `running(services)` is entered after the services exist and left before storage
    closes: start the relay, consumers and channel backend there."""

    route_handlers: Sequence[ControllerRouterHandler]

    def running(self, services: Services) -> AbstractAsyncContextManager[None]: ...


def default_security(settings: Settings) -> Security:
    from storage.blobs import FileBlobStore

    return Security(
        hasher=Argon2Hasher(),
        tokens=JwtAccessTokens(
            settings.secret_key,
            settings.jwt_issuer,
            settings.jwt_audience,
            settings.access_token_ttl,
        ),
        images=PillowImageProcessor(settings.max_upload_bytes, settings.max_image_pixels),
        blobs=FileBlobStore(settings.media_dir),
    )


async def open_storage(settings: Settings, *, migrate: bool) -> StorageHandle:
    # Imported here so `plaza --help` and config errors never pay for piccolo's import.
    from storage.factory import open_storage as open_store

    handle = await open_store(settings.database_url, run_migrations=migrate)
    # A cast, not a conversion: SqlStore implements domain.ports.Store, but mypy treats the
    # Protocol's plain attributes as invariant (fix: read-only properties in Store).
    return cast(StorageHandle, handle)


def create_app(
    settings: Settings,
    *,
    publisher: Publisher | None = None,
    addons: Sequence[Addon] = (),
    security: Security | None = None,
    migrate: bool | None = None,
) -> Litestar:
    """`migrate`: None runs migrations at start on SQLite only (the embedded laptop case;
    fleets run `plaza migrate` as a release step, never from N web processes at once)."""
    run_migrations = settings.database_kind == "sqlite" if migrate is None else migrate

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            storage = await open_storage(settings, migrate=run_migrations)
            stack.push_async_callback(storage.close)
            services = build_services(
                settings, storage, security or default_security(settings), publisher=publisher
            )
            services.readiness["database"] = storage.ping
            if settings.redis_url is not None:
                services.readiness["redis"] = await _redis_check(settings.redis_url, stack)
            app.state.services = services
            for addon in addons:
                await stack.enter_async_context(addon.running(services))
            yield

    api = Router(
        path=API_PREFIX,
        route_handlers=[
            AuthController,
            UsersController,
            PostsController,
            FeedController,
            SearchController,
            NotificationsController,
            _with_body_limit(MediaController, upload_body_limit(settings.max_upload_bytes)),
            HealthController,
            *(handler for addon in addons for handler in addon.route_handlers),
        ],
        dependencies=DEPENDENCIES,
    )
    return Litestar(
        route_handlers=[api],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[security_headers(docs_prefix=SCHEMA_PATH)],
        request_max_body_size=settings.max_body_bytes,
        cors_config=_cors(settings),
        openapi_config=OpenAPIConfig(
            title="Plaza",
            version="1",
            path=SCHEMA_PATH,
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin()],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
            security=[{"bearer": []}],
        ),
        debug=False,
        # The process owns logging (server.cli); a library must not replace root handlers.
        logging_config=None,
    )


def _with_body_limit(controller: type, limit: int) -> type:
    """The controller with its own request body limit (uploads exceed the JSON limit)."""
    return type(controller.__name__, (controller,), {"request_max_body_size": limit})


def _cors(settings: Settings) -> CORSConfig | None:
    # Bearer tokens, not cookies: CORS only decides which web apps may call the API from a
    # browser. Without configured origins, browsers keep their same-origin default.
    if not settings.allowed_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.allowed_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        expose_headers=["Link", "Retry-After"],
        max_age=600,
    )


async def _redis_check(url: str, stack: AsyncExitStack) -> ReadinessCheck:
    import redis.asyncio as redis

    # Short timeouts: the probe reports "down" quickly instead of hanging with Redis.
    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    stack.push_async_callback(client.aclose)

    async def ping() -> None:
        await client.ping()

    return ping
