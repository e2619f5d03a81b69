"""Server-side protection of the live layer, with small limits so the tests stay quick:
slow consumers, subscription limits, heartbeats and graceful shutdown."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import TEST_ENV
from tests.support.clients import Ws, make_user
from tests.support.live_server import LiveServer, running_server

pytestmark = pytest.mark.e2e

SMALL = {
    **TEST_ENV,
    "PLAZA_WS_SEND_QUEUE_BYTES": "16384",
    "PLAZA_WS_MAX_SUBSCRIPTIONS": "4",
}
FAST_HEARTBEAT = {**TEST_ENV, "PLAZA_WS_PING_INTERVAL": "1", "PLAZA_WS_PING_TIMEOUT": "1"}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("plaza-small"), SMALL) as live:
        yield live


async def test_subscription_limit(small: LiveServer, http: httpx.AsyncClient) -> None:
    me = await make_user(http, small.api)
    post = await http.post(f"{small.api}/posts", json={"content": "p"}, headers=me.auth)
    async with await Ws.connect(small.ws_url, me.token) as ws:
        for channel in ("feed", "notifications", "public", f"user:{me.id}"):
            await ws.ok("subscribe", channel=channel)
        over = await ws.call("subscribe", channel=f"post:{post.json()['id']}")
        assert over["ok"] is False and over["error"]["code"] == "too_many_subscriptions"
        await ws.ok("subscribe", channel="public")  # already held: not a new one
        await ws.ok("unsubscribe", channel="public")
        await ws.ok("subscribe", channel=f"post:{post.json()['id']}")


async def test_slow_consumer_is_closed_4001_and_others_keep_receiving(
    small: LiveServer, http: httpx.AsyncClient
) -> None:
    author = await make_user(http, small.api)
    reader = await make_user(http, small.api)
    channel = f"user:{author.id}"
    fast = await Ws.connect(small.ws_url, reader.token)
    # A peer that stops reading, with a tiny receive window (set before connecting).
    slow = _handshake(small.port, reader.token, rcvbuf=4096)
    try:
        await fast.ok("subscribe", channel=channel)
        slow.sendall(_frame({"id": 1, "op": "subscribe", "channel": channel}))
        epoch = json.loads(_read_frames(slow, until_text=1)[0][1])["result"]["epoch"]
        ids = []
        for i in range(100):
            r = await http.post(
                f"{small.api}/posts", json={"content": f"{i} " + "x" * 450}, headers=author.auth
            )
            ids.append(r.json()["id"])
        received = [p["event"]["data"]["id"] for p in await fast.pushes_until(len(ids), 10)]
        assert received == ids  # the fast socket got everything, in order
        # The slow peer asks for the whole history (~75 KB a reply) again and again and
        # reads nothing: the kernel's buffers fill (up to ~4 MiB on loopback), then its send
        # queue, and then it is cut off. Two bursts, paced under the inbound rate limit.
        since = {"offset": "0", "epoch": epoch}
        for burst in range(2):
            for n in range(45):
                request = {"id": 100 * (burst + 1) + n, "op": "subscribe", "channel": channel}
                slow.sendall(_frame({**request, "since": since}))
            await asyncio.sleep(2.6)
        r = await http.post(f"{small.api}/posts", json={"content": "still"}, headers=author.auth)
        push = await fast.push()  # others keep receiving
        assert push["event"]["data"]["id"] == r.json()["id"]
        frames = _read_frames(slow)
        closes = [payload for opcode, payload in frames if opcode == 8]
        assert closes and int.from_bytes(closes[0][:2], "big") == 4001
        replies = sum(1 for op, payload in frames if op == 1 and payload.startswith(b'{"id"'))
        assert replies < 90  # cut off, not served without bound
        await fast.ok("ping")
    finally:
        slow.close()
        await fast.close()


def _frame(message: dict[str, object]) -> bytes:
    """A masked client text frame."""
    payload = json.dumps(message).encode()
    mask = os.urandom(4)
    size = len(payload)
    head = bytes([0x81]) + (
        bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    )
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _read_frames(
    sock: socket.socket, until_text: int | None = None, timeout: float = 10.0
) -> list[tuple[int, bytes]]:
    """Server frames (opcode, payload) until EOF, or until `until_text` text frames."""
    sock.settimeout(timeout)
    data = b""
    frames: list[tuple[int, bytes]] = []
    while True:
        while len(data) >= 2:
            opcode, size, offset = data[0] & 0x0F, data[1] & 0x7F, 2
            if size == 126:
                size, offset = int.from_bytes(data[2:4], "big"), 4
            elif size == 127:
                size, offset = int.from_bytes(data[2:10], "big"), 10
            if len(data) < offset + size:
                break
            frames.append((opcode, data[offset : offset + size]))
            data = data[offset + size :]
        if until_text is not None and sum(op == 1 for op, _ in frames) >= until_text:
            return frames
        chunk = sock.recv(65536)
        if not chunk:
            return frames
        data += chunk


def _handshake(port: int, token: str, rcvbuf: int | None = None) -> socket.socket:
    """A WebSocket upgrade by hand, for a peer that then misbehaves."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: frames may follow the headers at once
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_a_silent_peer_is_dropped_by_the_heartbeat(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    with running_server(tmp_path, FAST_HEARTBEAT) as live:
        me = await make_user(http, live.api)
        await _silent_peer_is_dropped(live.port, me.token)


async def _silent_peer_is_dropped(port: int, token: str) -> None:
    sock = _handshake(port, token)
    sock.settimeout(0.5)
    started = time.monotonic()
    closed_at = None
    try:
        while time.monotonic() - started < 15:
            try:
                if sock.recv(4096) == b"":
                    closed_at = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except ConnectionResetError:
                closed_at = time.monotonic() - started
                break
    finally:
        sock.close()
    # ping every 1 s, 1 s to answer: a silent peer is gone within a few seconds (with the
    # defaults, 20 s + 20 s: within the protocol's ~45 s).
    assert closed_at is not None and closed_at < 8


async def test_shutdown_sends_close_soon_then_4000(tmp_path: Path) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        with running_server(tmp_path, TEST_ENV) as live:
            me = await make_user(http, live.api)
            ws = await Ws.connect(live.ws_url, me.token)
            await ws.ok("subscribe", channel="feed")
            stopping = asyncio.get_running_loop().run_in_executor(None, live.stop)
            push = await ws.push(timeout=10)
            assert push == {"push": "close_soon", "code": 4000, "reason": "server going away"}
            assert await ws.closed_with(timeout=10) == 4000
            # uvicorn re-raises SIGTERM after its graceful shutdown: a clean exit by signal.
            assert await stopping in (0, -signal.SIGTERM)
            assert "Traceback" not in live.log()
