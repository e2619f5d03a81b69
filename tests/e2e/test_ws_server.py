"""Server-side protection of the live layer against real `plaza serve` processes, with small
limits and short deadlines so that each deadline gets one real check without the test
sleeping through it: the auth deadline, slow consumers, subscription limits, the
heartbeat, peers that stop taking data, and graceful shutdown. (Every rule behind these is
unit-tested on a fake clock in tests/server/test_ws_core.py and test_ws_endpoint.py.)"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets

from tests.e2e.conftest import TEST_ENV
from tests.support.clients import PASSWORD, Ws, make_user
from tests.support.live_server import LiveServer, running_server

pytestmark = pytest.mark.e2e

SMALL = {
    **TEST_ENV,
    "PLAZA_WS_SEND_QUEUE_BYTES": "16384",
    "PLAZA_WS_MAX_SUBSCRIPTIONS": "4",
    "PLAZA_WS_AUTH_TIMEOUT": "1",
}
# Heartbeat window 2 s, so a close frame gets 1 s; one socket per user, so the test sees
# when the server has let go of a session; a send queue that a stalled peer cannot fill,
# so that the stall, not the queue, decides.
FAST = {
    **TEST_ENV,
    "PLAZA_WS_PING_INTERVAL": "1",
    "PLAZA_WS_PING_TIMEOUT": "1",
    "PLAZA_WS_MAX_SOCKETS_PER_USER": "1",
    "PLAZA_WS_SEND_QUEUE_BYTES": str(8 * 1024 * 1024),
}
# A history of 120 near-maximal posts makes a subscribe reply of ~110 KB: 45 of them
# (inside the inbound burst of 50) are ~5 MB, more than the ~3 MB the kernel and the
# transport buffer for a peer that reads nothing.
HISTORY_POSTS = 120
STALLING_REQUESTS = 45
# Peers that stop reading at once, each with full buffers on the server side.
STUCK_PEERS = 5


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("plaza-small"), SMALL) as live:
        yield live


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("plaza-fast"), FAST) as live:
        yield live


@dataclass
class History:
    channel: str
    post_ids: list[str]


@pytest.fixture(scope="module")
def history(fast: LiveServer) -> History:
    """A channel on the fast server whose history makes large subscribe replies."""
    with httpx.Client(timeout=10) as http:
        name = f"author_{os.urandom(5).hex()}"
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        assert http.post(f"{fast.api}/auth/register", json=body).status_code == 201
        r = http.post(f"{fast.api}/auth/login", json={"login": name, "password": PASSWORD})
        login = r.json()
    return History(f"user:{login['user']['id']}", _post_history(fast.api, login["access_token"]))


def _post_history(api: str, token: str) -> list[str]:
    """HISTORY_POSTS near-maximal posts by the token's user; their ids, oldest first."""
    ids = []
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {token}"}) as http:
        for i in range(HISTORY_POSTS):
            r = http.post(f"{api}/posts", json={"content": f"{i} " + "x" * 480})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
    return ids


# --- the auth deadline, subscriptions, slow consumers -------------------------------------


async def test_auth_deadline_closes_4401(small: LiveServer) -> None:
    started = time.monotonic()
    async with await Ws.connect(small.ws_url) as ws:
        assert await ws.closed_with() == 4401
    assert 0.9 < time.monotonic() - started < 4  # PLAZA_WS_AUTH_TIMEOUT=1


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
        epoch = _subscribe(slow, channel)
        ids = await asyncio.to_thread(_post_history, small.api, author.token)
        received = [p["event"]["data"]["id"] for p in await fast.pushes_until(len(ids), 10)]
        assert received == ids  # the fast socket got everything, in order
        # The slow peer asks for the whole history again and again and reads nothing: the
        # kernel's buffers fill, then its send queue (16 KiB), and it is told 4001.
        _ask_for_history(slow, channel, epoch)
        r = await http.post(f"{small.api}/posts", json={"content": "still"}, headers=author.auth)
        push = await fast.push()  # others keep receiving
        assert push["event"]["data"]["id"] == r.json()["id"]
        # Time for the server to handle the burst (~0.1 s), well inside the 5 s that the
        # close frame gets: the peer then reads again and finds the close frame.
        await asyncio.sleep(0.5)
        frames = _read_frames(slow, until_close=True)
        closes = [payload for opcode, payload in frames if opcode == 8]
        assert closes and int.from_bytes(closes[0][:2], "big") == 4001
        replies = sum(1 for op, payload in frames if op == 1 and payload.startswith(b'{"id"'))
        assert replies < STALLING_REQUESTS  # cut off, not served without bound
        await fast.ok("ping")
    finally:
        slow.close()
        await fast.close()


# --- peers that stop answering --------------------------------------------------------------


async def test_a_silent_peer_is_dropped_by_the_heartbeat(
    fast: LiveServer, http: httpx.AsyncClient
) -> None:
    me = await make_user(http, fast.api)
    sock = _handshake(fast.port, me.token)
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


async def test_a_peer_that_takes_nothing_is_dropped_within_the_heartbeat_window(
    fast: LiveServer, http: httpx.AsyncClient, history: History
) -> None:
    """uvicorn's own heartbeat cannot drop this one: its ping waits behind the full buffer
    and its close waits for that buffer to drain. The session's send-stall watchdog does."""
    reader = await make_user(http, fast.api)
    peer = _handshake(fast.port, reader.token, rcvbuf=4096)
    try:
        epoch = _subscribe(peer, history.channel)
        async with await Ws.connect(fast.ws_url, reader.token) as second:
            assert await second.closed_with() == 4029  # the session holds the user's place
        started = time.monotonic()
        _ask_for_history(peer, history.channel, epoch)  # and reads nothing from now on
        # A write stalls; 2 s later (PLAZA_WS_PING_INTERVAL + PLAZA_WS_PING_TIMEOUT) the
        # session is dropped and its place is free again.
        await _until_admitted(fast, reader.token, within=8)
        assert time.monotonic() - started < 8
        assert "socket dropped without a close frame: send stalled" in fast.log()
    finally:
        peer.close()


async def test_peers_that_take_nothing_lose_their_connections_not_only_their_sessions(
    fast: LiveServer, http: httpx.AsyncClient, history: History
) -> None:
    """The session's watchdog lets go of the session; the transport under it is then
    aborted (an RST) 2 s after its close, whatever its buffers hold, instead of holding
    them until TCP gives up. Observed from the kernel's connection table."""
    peers = []
    try:
        for _ in range(STUCK_PEERS):
            reader = await make_user(http, fast.api)
            peer = _handshake(fast.port, reader.token, rcvbuf=4096)
            _ask_for_history(peer, history.channel, _subscribe(peer, history.channel))
            peers.append(peer)
        ports = {peer.getsockname()[1] for peer in peers}
        assert _server_side(fast.port, ports) == ports  # all held, buffers full
        started = time.monotonic()
        while _server_side(fast.port, ports) and time.monotonic() - started < 15:
            await asyncio.sleep(0.1)
        released_after = time.monotonic() - started
        assert _server_side(fast.port, ports) == set()
        # 2 s of stalled writes (ping interval + timeout), up to 1 s for the close, 2 s
        # until the abort: 5 s, plus scheduling slack on a busy machine.
        assert released_after < 8, released_after
        for peer in peers:  # each peer was reset, not closed politely
            with pytest.raises(ConnectionResetError):
                _drain(peer)
    finally:
        for peer in peers:
            peer.close()


async def test_a_subscriber_that_stops_reading_is_reset_with_its_kernel_buffers(
    fast: LiveServer, http: httpx.AsyncClient
) -> None:
    """Posts streamed to a peer that reads nothing fill the kernel's send buffer, so when
    the session lets go asyncio's own buffer is empty and a plain close would leave the
    kernel holding the connection (FIN_WAIT1, its unsent data) for minutes. It is reset."""
    author, reader = await make_user(http, fast.api), await make_user(http, fast.api)
    peer = _handshake(fast.port, reader.token, rcvbuf=4096)
    try:
        _subscribe(peer, f"user:{author.id}")
        port = peer.getsockname()[1]
        started = time.monotonic()
        headers = {"Authorization": f"Bearer {author.token}"}
        while _server_side(fast.port, {port}) and time.monotonic() - started < 15:
            await http.post(f"{fast.api}/posts", headers=headers, json={"content": "x" * 480})
            await asyncio.sleep(0.02)
        held = time.monotonic() - started
        assert _server_side(fast.port, {port}) == set()
        # 2 s of stalled writes, then 2 s for the kernel to deliver: ~4 s, plus slack.
        assert held < 10, held
        with pytest.raises(ConnectionResetError):
            _drain(peer)
    finally:
        peer.close()


async def test_logout_returns_even_if_the_socket_takes_nothing(
    fast: LiveServer, http: httpx.AsyncClient, history: History
) -> None:
    """The close frame (4401) cannot reach this peer: the socket is given 1 s (the ping
    timeout) to take it and is then let go, instead of holding the logout forever."""
    reader = await make_user(http, fast.api)
    peer = _handshake(fast.port, reader.token, rcvbuf=4096)
    try:
        _ask_for_history(peer, history.channel, _subscribe(peer, history.channel))
        # The server is writing to a full buffer within ~0.1 s, and the stall would drop
        # the socket 2 s later: log out in between.
        await asyncio.sleep(0.4)
        started = time.monotonic()
        r = await http.post(f"{fast.api}/auth/logout", json={"refresh_token": reader.refresh})
        assert r.status_code == 204
        assert time.monotonic() - started < 5
        assert "socket abandoned: close 4401 not taken within 1.0 s" in fast.log()
        fresh = await make_user(http, fast.api)  # the server still serves sockets
        async with await Ws.connect(fast.ws_url, fresh.token) as ws:
            assert await ws.ok("ping") == {}
    finally:
        peer.close()


# --- shutdown ------------------------------------------------------------------------------


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


# --- a raw peer -----------------------------------------------------------------------------


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
    sock: socket.socket,
    until_text: int | None = None,
    timeout: float = 10.0,
    *,
    until_close: bool = False,
) -> list[tuple[int, bytes]]:
    """Server frames (opcode, payload) until EOF, `until_text` text frames or a close."""
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
        if until_close and any(op == 8 for op, _ in frames):
            return frames
        chunk = sock.recv(65536)
        if not chunk:
            return frames
        data += chunk


def _server_side(port: int, peer_ports: set[int]) -> set[int]:
    """Which of these client ports the server still holds a connection to (IPv4 loopback),
    from the kernel's table: the server side's local port is `port`."""
    held = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote = line.split()[1:3]
        remote_port = int(remote.split(":")[1], 16)
        if int(local.split(":")[1], 16) == port and remote_port in peer_ports:
            held.add(remote_port)
    return held


def _drain(sock: socket.socket) -> None:
    """Read until the connection ends (raises what ended it, if not a clean EOF)."""
    sock.settimeout(10)
    while sock.recv(1 << 20):
        pass


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


def _subscribe(sock: socket.socket, channel: str) -> str:
    """Subscribe the raw peer (once its session is up); the channel's epoch."""
    sock.sendall(_frame({"id": 1, "op": "subscribe", "channel": channel}))
    reply = json.loads(_read_frames(sock, until_text=1)[0][1])
    assert reply["ok"] is True, reply
    epoch: str = reply["result"]["epoch"]
    return epoch


def _ask_for_history(sock: socket.socket, channel: str, epoch: str) -> None:
    """Ask for the channel's whole history, again and again, in one burst."""
    since = {"offset": "0", "epoch": epoch}
    for n in range(STALLING_REQUESTS):
        request = {"id": 100 + n, "op": "subscribe", "channel": channel, "since": since}
        sock.sendall(_frame(request))


async def _until_admitted(server: LiveServer, token: str, within: float) -> None:
    """Open sockets of this user until one is let in (its earlier one was let go)."""
    deadline = time.monotonic() + within
    while True:
        ws = await Ws.connect(server.ws_url, token)
        try:
            reply = await ws.call("ping")
        except websockets.ConnectionClosed:
            reply = None  # closed 4029 before the reply
        finally:
            await ws.close()
        if reply is not None and reply["ok"]:
            return
        assert time.monotonic() < deadline, "the stalled session was never let go"
        await asyncio.sleep(0.2)


# --- compression ---------------------------------------------------------------------------


async def test_permessage_deflate_is_off_unless_configured(
    small: LiveServer, tmp_path: Path
) -> None:
    """Offered by the client (websockets and browsers always offer it), refused by default:
    it doubles an idle socket's memory for little gain on small JSON frames."""
    async with websockets.connect(small.ws_url) as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
    with running_server(tmp_path, {**TEST_ENV, "PLAZA_WS_COMPRESSION": "on"}) as live:
        async with websockets.connect(live.ws_url) as ws:
            assert ws.response is not None
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
