"""The floor: bare uvicorn + websockets, no framework. `POST /posts` encodes the post
into one frame and writes that same frame to every open socket; that is the least work a
server can do to deliver an event to N sockets.

    python -m bench.peers.floor --port 8001
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bench.peers import filler_post, serve

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SOCKETS: set[Send] = set()
READY = json.dumps({"ready": True})


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        SOCKETS.add(send)
        try:
            await send({"type": "websocket.send", "text": READY})
            while (await receive())["type"] != "websocket.disconnect":
                pass
        finally:
            SOCKETS.discard(send)
        return
    if scope["method"] == "POST" and scope["path"] == "/posts":
        body = json.loads(await _body(receive))
        post = filler_post(body["content"])
        event = {"push": "event", "channel": "feed", "event": {"type": "post.created"}}
        event["event"]["data"] = post  # type: ignore[index]
        frame = json.dumps(event)  # once per event, the same frame for every socket
        message = {"type": "websocket.send", "text": frame}
        for socket_send in list(SOCKETS):
            try:
                await socket_send(message)
            except Exception:
                continue
        await _respond(send, 201, json.dumps(post).encode())
        return
    await _respond(send, 200 if scope["path"] == "/health" else 404, b"{}")


if __name__ == "__main__":
    serve(app)
