"""A bare Litestar app with the ChannelsPlugin, as its documentation sets one up: every
socket subscribes to the `feed` channel and forwards what it receives; `POST /posts`
publishes the post once. One process uses the memory backend; with --redis, the Redis
pub/sub backend lets two processes share the channel (the fleet scenario).

    python -m bench.peers.litestar_channels --port 8002 [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import msgspec
from litestar import Litestar, WebSocket, get, post, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.exceptions import WebSocketDisconnect

from bench.peers import filler_post, serve

READY = b'{"ready": true}'


class PostIn(msgspec.Struct):
    content: str


@websocket("/ws")
async def feed_socket(socket: WebSocket[Any, Any, Any], channels: ChannelsPlugin) -> None:
    await socket.accept()
    async with channels.start_subscription(["feed"]) as subscriber:
        await socket.send_data(READY)
        async with subscriber.run_in_background(socket.send_data):
            try:
                while True:
                    await socket.receive_data(mode="text")
            except WebSocketDisconnect:
                pass


@post("/posts", status_code=201)
async def create_post(data: PostIn, channels: ChannelsPlugin) -> dict[str, Any]:
    created = filler_post(data.content)
    event = {
        "push": "event",
        "channel": "feed",
        "event": {"type": "post.created", "data": created},
    }
    channels.publish(msgspec.json.encode(event), ["feed"])
    return created


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def _backend(redis_url: str | None, prefix: str) -> ChannelsBackend:
    if redis_url is None:
        return MemoryChannelsBackend()
    from litestar.channels.backends.redis import RedisChannelsPubSubBackend
    from redis.asyncio import Redis

    return RedisChannelsPubSubBackend(redis=Redis.from_url(redis_url), key_prefix=prefix)


def create_app(redis_url: str | None, prefix: str = "bench-litestar") -> Litestar:
    plugin = ChannelsPlugin(backend=_backend(redis_url, prefix), channels=["feed"])
    return Litestar([feed_socket, create_post, health], plugins=[plugin])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", help="Redis URL: the pub/sub backend (several processes)")
    parser.add_argument("--prefix", default=os.environ.get("BENCH_PREFIX", "bench-litestar"))
    args = parser.parse_args(argv)
    serve(create_app(args.redis, args.prefix), ["--port", str(args.port)])


if __name__ == "__main__":
    main(sys.argv[1:])
