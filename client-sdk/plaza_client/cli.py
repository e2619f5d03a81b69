"""`plaza-client`: tail live events as JSON lines, or publish a post.

    plaza-client tail --feed --notifications
    plaza-client post "hello"

The server and credentials come from --server/--user/--password, else from the
environment (ENVIRONMENT below, which is also the end of `plaza-client --help`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import msgspec

from plaza_client.client import AsyncClient
from plaza_client.errors import PlazaError, SessionClosed
from plaza_client.models import to_builtins

__all__ = ["main"]

DEFAULT_URL = "http://127.0.0.1:8000"

ENVIRONMENT = f"""\
environment variables (each used when its option is not given):
  PLAZA_URL       the server's base URL (default: {DEFAULT_URL})
  PLAZA_USER      the username or email to log in as
  PLAZA_PASSWORD  the password (asked for on the terminal when unset)
"""


def _parser() -> argparse.ArgumentParser:
    # The epilog's line breaks are kept; option help is still wrapped as usual.
    formatting: dict[str, Any] = {
        "epilog": ENVIRONMENT,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
    parser = argparse.ArgumentParser(
        prog="plaza-client", description="Plaza command-line client", **formatting
    )
    common = argparse.ArgumentParser(add_help=False)
    # The help names the variables, never their values: PLAZA_PASSWORD must not be echoed.
    common.add_argument(
        "--server",
        default=os.environ.get("PLAZA_URL", DEFAULT_URL),
        metavar="URL",
        help=f"server base URL (default: $PLAZA_URL, else {DEFAULT_URL})",
    )
    common.add_argument(
        "--user", default=os.environ.get("PLAZA_USER"), help="username or email ($PLAZA_USER)"
    )
    common.add_argument(
        "--password",
        default=os.environ.get("PLAZA_PASSWORD"),
        help="password ($PLAZA_PASSWORD; asked for when neither is given)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log reconnects")
    commands = parser.add_subparsers(dest="command", required=True)

    tail = commands.add_parser("tail", parents=[common], help="print live events", **formatting)
    tail.add_argument("--feed", action="store_true", help="the home feed")
    tail.add_argument("--notifications", action="store_true", help="own notifications")
    tail.add_argument("--public", action="store_true", help="every public post")
    tail.add_argument(
        "--channel", action="append", default=[], metavar="NAME", help="e.g. post:123, user:42"
    )

    post = commands.add_parser("post", parents=[common], help="publish a post", **formatting)
    post.add_argument("content")
    post.add_argument("--media", action="append", default=[], metavar="FILE", help="an image")
    post.add_argument("--idempotency-key")
    return parser


def _emit(obj: Any) -> None:
    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")
    sys.stdout.flush()


async def _login(client: AsyncClient, args: argparse.Namespace) -> None:
    if not args.user:
        raise SystemExit("plaza-client: give --user or set PLAZA_USER")
    password = args.password or getpass.getpass(f"password for {args.user}: ")
    await client.login(args.user, password)


async def _tail(args: argparse.Namespace) -> None:
    channels = [
        *(["feed"] if args.feed else []),
        *(["notifications"] if args.notifications else []),
        *(["public"] if args.public else []),
        *args.channel,
    ] or ["feed", "notifications"]
    async with AsyncClient(args.server) as client:
        await _login(client, args)
        async with client.live() as live:
            for channel in channels:
                await live.subscribe(channel)
            async for event in live:
                _emit(event.to_json())


async def _post(args: argparse.Namespace) -> None:
    async with AsyncClient(args.server) as client:
        await _login(client, args)
        media_ids = [(await client.upload_media(path)).id for path in args.media]
        post = await client.create_post(args.content, media_ids, args.idempotency_key)
        _emit(to_builtins(post))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    run = _tail if args.command == "tail" else _post
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130
    except SessionClosed as exc:
        print(f"plaza-client: session closed ({exc.close_code}): {exc.reason}", file=sys.stderr)
        return 1
    except PlazaError as exc:
        print(f"plaza-client: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
