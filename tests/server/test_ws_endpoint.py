"""The asyncio driver of the session on a fake socket whose peer the test plays: frames in
and out, and above all the ways a socket ends when its peer stops taking data."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from api_world import Api, User, make_settings, running_api

from server.container import Services
from server.ws.endpoint import SocketSession
from server.ws.session import Timeouts

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Short enough to keep every test well under a second, long enough for a busy CI loop.
QUICK = Timeouts(auth=10, stall=0.2, close=0.2, flush=0.2)


class FakeSocket:
    """A WebSocket as the driver sees it. `stall()` makes every send, the close frame's
    too, wait as uvicorn's do while the transport's buffer is full."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.close_frame: tuple[int, str] | None = None
        self._writable = asyncio.Event()
        self._writable.set()

    async def accept(self) -> None:
        pass

    @property
    def receive(self) -> Callable[[], Any]:
        return self.inbox.get

    async def send_data(self, data: str, mode: Any) -> None:
        await self._writable.wait()
        self.sent.append(json.loads(data))

    async def close(self, code: int, reason: str) -> None:
        await self._writable.wait()
        self.close_frame = (code, reason)
        # As uvicorn does: after our close frame, the reader hears a disconnect.
        self.inbox.put_nowait({"type": "websocket.disconnect", "code": code})

    def stall(self) -> None:
        self._writable.clear()

    def resume(self) -> None:
        self._writable.set()

    def send(self, message: dict[str, Any]) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": json.dumps(message)})


class Peer:
    """One running session over a fake socket."""

    def __init__(self, services: Services, user: User | None, timeouts: Timeouts) -> None:
        self.socket = FakeSocket()
        token = None if user is None else user.access_token
        self.session = SocketSession(self.socket, services, token=token, timeouts=timeouts)
        self.task = asyncio.create_task(self.session.run())

    def authenticated(self) -> bool:
        return self.session.user_id is not None

    async def until(self, condition: Callable[[], bool], timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.005)

    async def ended(self, timeout: float = 2.0) -> float:
        """Seconds until the session's handler returned."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.wait_for(self.task, timeout)
        return loop.time() - start


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    tmp = tmp_path_factory.mktemp("ws-endpoint")
    settings = make_settings(tmp, f"sqlite:///{tmp / 'plaza.db'}")
    async with running_api(settings, workers=False) as api:
        yield api


async def connect(api: Api, *, timeouts: Timeouts = QUICK, **settings: Any) -> tuple[Peer, User]:
    services = api.services
    if settings:
        changed = dataclasses.replace(services.settings, **settings)
        services = dataclasses.replace(services, settings=changed)
    user = await api.user()
    peer = Peer(services, user, timeouts)
    await peer.until(peer.authenticated)
    return peer, user


def gone(api: Api, peer: Peer, user: User) -> bool:
    """The session left nothing behind: no place in the per-user limit, no channel."""
    return api.services.sessions.count(int(user.id)) == 0 and api.services.hub.channel_count == 0


async def test_frames_in_replies_out_until_the_peer_leaves(api: Api) -> None:
    peer, user = await connect(api)
    peer.socket.send({"id": 1, "op": "ping"})
    peer.socket.send({"id": 2, "op": "subscribe", "channel": "feed"})
    await peer.until(lambda: len(peer.socket.sent) == 2)
    assert peer.socket.sent[0] == {"id": 1, "ok": True, "result": {}}
    assert peer.socket.sent[1]["result"]["channel"] == "feed"
    peer.socket.inbox.put_nowait({"type": "websocket.disconnect", "code": 1001})
    await peer.ended()
    assert peer.socket.close_frame is None  # the peer closed: nothing to answer
    assert gone(api, peer, user)


async def test_the_auth_deadline_closes_4401_in_real_time(api: Api) -> None:
    peer = Peer(api.services, None, dataclasses.replace(QUICK, auth=0.05))
    assert await peer.ended() < 0.5
    assert peer.socket.close_frame == (4401, "authentication timeout")


async def test_a_write_stalled_for_the_heartbeat_window_drops_the_socket(api: Api) -> None:
    peer, user = await connect(api)
    peer.socket.stall()  # the peer's buffers are full: it takes nothing more
    peer.socket.send({"id": 1, "op": "subscribe", "channel": "public"})
    elapsed = await peer.ended()
    assert QUICK.stall * 0.9 <= elapsed < QUICK.stall + 0.3
    assert peer.socket.close_frame is None  # a close frame could not get through either
    assert gone(api, peer, user)


async def test_a_close_frame_the_peer_does_not_take_is_given_up_on(api: Api) -> None:
    peer, user = await connect(api)
    peer.socket.stall()
    # Logging out everywhere returns, although this socket never takes its close frame.
    async with asyncio.timeout(QUICK.close + 0.3):
        await api.services.sessions.revoke_user(int(user.id))
    await peer.ended()
    assert peer.socket.close_frame is None
    assert gone(api, peer, user)


async def test_a_close_waits_for_the_frame_being_written(api: Api) -> None:
    peer, user = await connect(api, timeouts=dataclasses.replace(QUICK, close=2.0))
    peer.socket.stall()
    peer.socket.send({"id": 1, "op": "ping"})
    revoked = asyncio.create_task(api.services.sessions.revoke_user(int(user.id)))
    await asyncio.sleep(0.05)
    assert not revoked.done()
    peer.socket.resume()  # the peer reads again: the reply, then the close frame
    await revoked
    await peer.ended()
    assert peer.socket.sent == [{"id": 1, "ok": True, "result": {}}]
    assert peer.socket.close_frame == (4401, "logged out everywhere")
    assert gone(api, peer, user)


async def test_shutdown_pushes_close_soon_then_closes_4000(api: Api) -> None:
    peer, user = await connect(api)
    await api.services.sessions.close_all()
    await peer.ended()
    assert peer.socket.sent == [{"push": "close_soon", "code": 4000, "reason": "server going away"}]
    assert peer.socket.close_frame == (4000, "server going away")
    assert gone(api, peer, user)


async def test_a_slow_consumer_is_closed_4001_after_the_frame_being_written(api: Api) -> None:
    timeouts = dataclasses.replace(QUICK, stall=5.0, close=2.0)
    peer, user = await connect(api, timeouts=timeouts, ws_send_queue_bytes=1024)
    peer.socket.stall()
    peer.socket.send({"id": 0, "op": "ping"})
    await asyncio.sleep(0.02)  # its reply is being written, and stalls
    for n in range(1, 50):  # ~30-byte replies: the queue holds some 34 of them
        peer.socket.send({"id": n, "op": "ping"})
    await asyncio.sleep(0.05)
    peer.socket.resume()
    await peer.ended()
    assert peer.socket.sent == [{"id": 0, "ok": True, "result": {}}]  # it was being written
    assert peer.socket.close_frame == (4001, "slow consumer")
    assert gone(api, peer, user)


async def test_the_eleventh_socket_by_frame_closes_4029_quietly(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    first, user = await connect(api)
    others = [Peer(api.services, user, QUICK) for _ in range(9)]
    for other in others:
        await other.until(other.authenticated)
    eleventh = Peer(api.services, None, QUICK)
    eleventh.socket.send({"id": 1, "op": "auth", "token": user.access_token})
    await eleventh.ended()
    assert eleventh.socket.close_frame == (4029, "too many sockets for this user")
    assert eleventh.socket.sent == []
    assert not [r for r in caplog.records if r.exc_info or r.levelname in ("ERROR", "CRITICAL")]
    for peer in (first, *others):
        peer.socket.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await peer.ended()
    assert api.services.sessions.count(int(user.id)) == 0
