"""python-socketio with its AsyncRedisManager, as its documentation sets one up for more
than one process: every client joins the `feed` room on connect; `POST /posts` (a
Starlette route beside the Socket.IO app) emits the post to the room once, through Redis.

    python -m bench.peers.socketio_app --port 8003 --redis redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.peers import filler_post, serve

# python-socketio ships no type information: one untyped handle, the rest is typed.
socketio: Any = importlib.import_module("socketio")


def create_app(redis_url: str, prefix: str) -> Any:
    manager = socketio.AsyncRedisManager(redis_url, channel=f"{prefix}socketio")
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager, transports=["websocket"])

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await sio.enter_room(sid, "feed")

    sio.on("connect", connect)

    async def create_post(request: Request) -> JSONResponse:
        body = await request.json()
        created = filler_post(body["content"])
        await sio.emit("post.created", created, room="feed")
        return JSONResponse(created, status_code=201)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    rest = Starlette(
        routes=[Route("/posts", create_post, methods=["POST"]), Route("/health", health)]
    )
    return socketio.ASGIApp(sio, other_asgi_app=rest)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--prefix", default=os.environ.get("BENCH_PREFIX", "bench-sio:"))
    args = parser.parse_args(argv)
    serve(create_app(args.redis, args.prefix), ["--port", str(args.port)])


if __name__ == "__main__":
    main(sys.argv[1:])
