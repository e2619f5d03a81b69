"""`plaza` console script: serve, worker, migrate, dead-letters.

Bad configuration prints one line (`plaza: PLAZA_X: problem`) to stderr and exits 2, the
conventional status for a usage error, before anything is opened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from domain.consumers import Kind
from server.logs import configure as configure_logging
from server.settings import ConfigError, Settings

KINDS = [str(kind) for kind in Kind]

EXIT_CONFIG = 2


class _StripQuery(logging.Filter):
    """Cut query strings out of uvicorn's WebSocket request lines (it logs them even with
    the access log off), so a token a client wrongly put in a URL never reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "WebSocket %s" in record.msg and record.args:
            args = tuple(
                a.split("?", 1)[0] if isinstance(a, str) and "?" in a else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
            record.args = args
        return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plaza", description="Plaza social server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web server (REST + WebSocket)")
    serve.add_argument("--host", help="bind address (default: PLAZA_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: PLAZA_PORT/PORT or 8000)")
    commands.add_parser(
        "worker",
        help="run the outbox relay and the event consumers of a fleet (needs PLAZA_REDIS_URL)",
    )
    commands.add_parser("migrate", help="apply database migrations")
    letters = commands.add_parser(
        "dead-letters", help="list or replay events a consumer kind gave up on"
    )
    actions = letters.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="show dead letters, oldest event first")
    listing.add_argument("--kind", choices=KINDS, help="only this consumer kind")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    replay = actions.add_parser(
        "replay", help="hand dead letters back to their kind (the event runs again)"
    )
    replay.add_argument("ids", nargs="*", type=int, help="outbox ids (see list)")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    replay.add_argument("--kind", choices=KINDS, help="only this consumer kind")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"plaza: {error}", file=sys.stderr)
        return EXIT_CONFIG
    # Plaza's loggers, the libraries' and uvicorn's: one handler, text or JSON lines.
    configure_logging(settings.log_format)
    if args.command == "serve":
        return serve(settings, host=args.host, port=args.port)
    if args.command == "worker":
        return worker(settings)
    if args.command == "dead-letters":
        from server.dead_letters import run as dead_letters

        return dead_letters(settings, args)
    return migrate(settings)


def serve(settings: Settings, *, host: str | None, port: int | None) -> int:
    import uvicorn

    from server.app import create_app
    from server.ws.transport import ReleasingWebSocketProtocol

    if settings.embedded:
        refusal = asyncio.run(_embedded_refusal(settings))
        if refusal is not None:
            print(f"plaza: {refusal}", file=sys.stderr)
            return EXIT_CONFIG
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host or settings.host,
        port=port or settings.port,
        # The protocol's frame limit: uvicorn closes a bigger frame with 1009 itself.
        ws_max_size=settings.ws_max_frame_bytes,
        # uvicorn's default protocol, but a socket whose peer stops reading is aborted
        # shortly after its close instead of holding its buffers until TCP gives up.
        ws=ReleasingWebSocketProtocol,
        ws_per_message_deflate=settings.ws_compression,
        # uvicorn's access log prints query strings; requests are not worth a token leak.
        access_log=False,
        # uvicorn's loggers propagate to the process's handler (server.logs), one format.
        log_config=None,
        # Off: the TCP peer stays the scope's client, and Plaza itself believes a proxy's
        # X-Forwarded-For only from PLAZA_TRUSTED_PROXIES (server/proxies.py).
        proxy_headers=False,
        server_header=False,
        lifespan="on",
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
    )
    logging.getLogger("uvicorn.error").addFilter(_StripQuery())
    server = _GracefulServer(config, app)
    _tune_gc()
    # uvicorn shuts down gracefully on Ctrl-C, then re-raises the KeyboardInterrupt.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else 1


# CPython collects its youngest generation every 700 allocations; a server accepting
# thousands of sockets at once allocates millions of short-lived objects, and the collector
# then spends more time than the handshakes (profiled: the resume storm of 2,000 sockets
# went from 2.99 s to 1.95 s and the server's CPU from 3.23 s to 1.89 s at 50,000).
GC_THRESHOLDS = (50_000, 50, 100)


def _tune_gc() -> None:
    """Everything built at start lives as long as the process: freeze it out of every
    collection, then collect the young generation far less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _GracefulServer(config: Any, app: Any) -> Any:
    import uvicorn

    from server.app import services_of

    class GracefulServer(uvicorn.Server):
        """uvicorn closes open WebSockets with 1012 when it shuts down, before the app's
        lifespan hears of it. Plaza first tells every socket `close_soon` and closes it
        with 4000, so clients resume on another instance without losing anything."""

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if getattr(app.state, "services", None) is not None:
                await services_of(app).sessions.close_all()
            await super().shutdown(sockets)

    return GracefulServer(config)


async def _embedded_refusal(settings: Settings) -> str | None:
    """One clear line, before uvicorn starts, when another embedded `plaza serve` already
    serves this database (the app checks again at start, holding the claim for its life)."""
    from server.app import single_process_refusal
    from storage.factory import open_storage

    storage = await open_storage(settings.database_url)
    try:
        return None if await storage.claim_exclusive() else single_process_refusal(settings)
    finally:
        await storage.close()


def worker(settings: Settings) -> int:
    if settings.embedded:
        print(
            "plaza: worker: PLAZA_REDIS_URL is unset, so there is no shared event log for a"
            " separate worker; embedded `plaza serve` runs the relay and consumers itself",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    from server.worker import run_worker

    _tune_gc()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(run_worker(settings))
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (uvicorn's `loop="auto"` picks it for `plaza serve`
    the same way), else asyncio's own loop. A worker is a loop of Redis and database round
    trips; with uvloop and the server's GC thresholds it spends 94-121 CPU-µs per event
    instead of 117-156 (bench/fleet.py throughput, 10,000 events, 1 and 2 workers)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def migrate(settings: Settings) -> int:
    from storage.migrate import migrate as run_migrations

    asyncio.run(run_migrations(settings.database_url))
    print("plaza: migrations applied", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
