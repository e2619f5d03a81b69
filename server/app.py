"""The app factory: the one place that builds engines, backends and services and wires them.

    create_app(settings) -> Litestar

The lifespan opens storage (migrating first on SQLite, the embedded default), builds the
live layer (channel backend, hub, session registry) and the `Services` container, publishes
it as `app.state.services`, starts the outbox relay and its consumers when this process runs
the workers, and closes everything on shutdown. Nothing is wired after start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import cast

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from channels.hub import Hub
from channels.publisher import ChannelPublisher
from channels.workers import EventWorker
from server.access import install as install_access
from server.container import API_PREFIX, Services, build_services
from server.controllers.auth import AuthController
from server.controllers.feed import FeedController
from server.controllers.health import HealthController
from server.controllers.media import MediaController, upload_body_limit
from server.controllers.metrics import metrics_endpoint
from server.controllers.notifications import NotificationsController
from server.controllers.posts import PostsController
from server.controllers.search import SearchController
from server.controllers.users import UsersController
from server.dependencies import DEPENDENCIES
from server.errors import EXCEPTION_HANDLERS
from server.headers import options_allow, security_headers
from server.live import event_worker, feed_store, fleet_sessions, live_layer, node_id
from server.metrics import Metrics, Sources
from server.openapi import BEARER_SCHEME, ClosedStructSchemaPlugin, LocalSwaggerRenderPlugin
from server.settings import Settings
from server.web import WebAppController
from server.ws.endpoint import make_ws_endpoint

SCHEMA_PATH = f"{API_PREFIX}/schema"


def create_app(
    settings: Settings, *, workers: bool | None = None, migrate: bool | None = None
) -> Litestar:
    """`workers`: run the event worker (relay and consumers) in this process; None does so
    when embedded (a fleet runs `plaza worker` processes instead).
    `migrate`: None runs migrations at start on SQLite only (the embedded laptop case;
    fleets run `plaza migrate` as a release step, never from N web processes at once)."""
    run_migrations = settings.database_kind == "sqlite" if migrate is None else migrate
    run_workers = settings.embedded if workers is None else workers
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Imported here so `plaza --help` and config errors never pay for piccolo's import.
        from storage.factory import open_storage

        async with AsyncExitStack() as stack:
            storage = await open_storage(settings.database_url, run_migrations=run_migrations)
            stack.push_async_callback(storage.close)
            if settings.embedded and not await storage.claim_exclusive():
                raise SingleProcessOnly(single_process_refusal(settings))
            layer = live_layer(settings)
            stack.push_async_callback(layer.close)
            hub = Hub(layer.backend)
            await hub.start()
            stack.push_async_callback(hub.stop)
            node = await node_id(settings, layer, stack)
            sessions = await fleet_sessions(settings, layer, stack)
            services = build_services(
                settings,
                storage,
                hub,
                ChannelPublisher(layer.backend),
                node_id=node,
                sessions=sessions,
                feed_store=feed_store(settings, storage, layer),
            )
            stack.push_async_callback(services.sessions.close_all)
            services.readiness["database"] = storage.ping
            if layer.redis_client is not None:
                services.readiness["redis"] = layer.redis_client.ping
            app.state.services = services
            app.state.worker = None
            if run_workers:
                worker = event_worker(services, layer.log)
                app.state.worker = worker
                storage.store.add_outbox_listener(worker.wake)
                stack.callback(storage.store.remove_outbox_listener, worker.wake)
                await worker.start()
                stack.push_async_callback(worker.stop)
            metrics.bind(Sources(storage.outbox_reader, layer.log, app.state.worker))
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
            make_ws_endpoint(frozenset(o.lower() for o in settings.allowed_origins)),
        ],
        dependencies=DEPENDENCIES,
    )
    application = Litestar(
        route_handlers=[api, WebAppController, metrics_endpoint(metrics)],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[security_headers(docs_prefix=SCHEMA_PATH), options_allow()],
        request_max_body_size=settings.max_body_bytes,
        cors_config=_cors(settings),
        openapi_config=OpenAPIConfig(
            title="Plaza",
            version="1",
            path=SCHEMA_PATH,
            # Served from Plaza's own files: the docs work without internet.
            render_plugins=[LocalSwaggerRenderPlugin(SCHEMA_PATH)],
            components=Components(
                security_schemes={
                    BEARER_SCHEME: SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
            # No document-wide security: each operation states its own (server.openapi).
        ),
        plugins=[ClosedStructSchemaPlugin()],
        debug=False,
        # The process owns logging (server.cli); a library must not replace root handlers.
        logging_config=None,
    )
    # Request ids, access lines and HTTP metrics for every request, routed or not.
    install_access(application, metrics, settings.trusted_proxies)
    return application


def services_of(app: Litestar) -> Services:
    """The running app's container (after startup)."""
    return cast(Services, app.state.services)


def worker_of(app: Litestar) -> EventWorker | None:
    """The running app's in-process event worker (None unless it runs the workers)."""
    return cast(EventWorker | None, app.state.worker)


class SingleProcessOnly(RuntimeError):
    """Another process already serves this database without a shared event log."""


def single_process_refusal(settings: Settings) -> str:
    what = "database" if settings.database_kind == "postgres" else "SQLite file"
    return (
        f"another plaza serve already serves this {what} without PLAZA_REDIS_URL; without"
        " Redis only one process may (live events would stay in one of them). Set"
        " PLAZA_REDIS_URL to run several, or stop the other one"
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
        expose_headers=[
            "Link",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
        ],
        max_age=600,
    )
