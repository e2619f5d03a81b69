"""`plaza` console script: serve, worker, migrate.

Bad configuration prints one line (`plaza: PLAZA_X: problem`) to stderr and exits 2, the
conventional status for a usage error, before anything is opened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Sequence
from typing import Any

from server.settings import ConfigError, Settings

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
    serve.add_argument(
        "--no-workers",
        action="store_true",
        help="do not run the outbox relay and consumers in this process (a fleet's web role)",
    )
    commands.add_parser("worker", help="run the outbox relay and event consumers (scaled out)")
    commands.add_parser("migrate", help="apply database migrations")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Plaza's own loggers (plaza.*) and the libraries' warnings; uvicorn configures its own.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"plaza: {error}", file=sys.stderr)
        return EXIT_CONFIG
    refusal = _not_built(args.command, settings)
    if refusal is not None:
        print(f"plaza: {refusal}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "serve":
        return serve(settings, host=args.host, port=args.port, workers=not args.no_workers)
    return migrate(settings)


def _not_built(command: str, settings: Settings) -> str | None:
    """The one refusal of what this version does not run yet: a fleet. Live events must
    reach every instance; without the Redis streams event log and channel backend they
    would silently stay in one process, so refuse rather than half-work."""
    if command == "worker":
        return (
            "worker: a separate worker needs the Redis event log, which this version does"
            " not ship; `plaza serve` runs the relay and consumers in-process"
        )
    if command == "serve" and settings.redis_url is not None:
        return (
            "PLAZA_REDIS_URL: the Redis channel backend is not available in this version;"
            " unset it to run embedded"
        )
    return None


def serve(settings: Settings, *, host: str | None, port: int | None, workers: bool) -> int:
    import uvicorn

    from server.app import create_app

    app = create_app(settings, workers=workers)
    config = uvicorn.Config(
        app,
        host=host or settings.host,
        port=port or settings.port,
        # The protocol's frame limit: uvicorn closes a bigger frame with 1009 itself.
        ws_max_size=settings.ws_max_frame_bytes,
        # uvicorn's access log prints query strings; requests are not worth a token leak.
        access_log=False,
        # Off: behind no proxy, X-Forwarded-For is attacker-controlled and would let a
        # client pick the IP the per-IP rate limits see. Enable via FORWARDED_ALLOW_IPS.
        proxy_headers=False,
        server_header=False,
        lifespan="on",
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
    )
    logging.getLogger("uvicorn.error").addFilter(_StripQuery())
    server = _GracefulServer(config, app)
    # uvicorn shuts down gracefully on Ctrl-C, then re-raises the KeyboardInterrupt.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else 1


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


def migrate(settings: Settings) -> int:
    from storage.migrate import migrate as run_migrations

    asyncio.run(run_migrations(settings.database_url))
    print("plaza: migrations applied", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
