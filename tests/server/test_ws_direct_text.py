"""DirectText: text frames framed by hand must be what a WebSocket client parses, and it
must refuse whenever the protocol's state says the frame is not its to write."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from server.ws.transport import DirectText


class _Transport:
    def __init__(self) -> None:
        self.data = bytearray()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return self.closing


def _protocol() -> Any:
    writable = asyncio.Event()
    writable.set()
    return SimpleNamespace(
        close_sent=False,
        disconnected=False,
        handshake_complete=True,
        conn=SimpleNamespace(state=State.OPEN, extensions=[]),
        writable=writable,
        transport=_Transport(),
    )


def _parsed(data: bytes) -> list[Frame]:
    client = Protocol(Side.CLIENT, state=State.OPEN, max_size=None)
    client.receive_data(data)
    return [cast(Frame, e) for e in client.events_received()]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 300_000])
def test_frames_of_every_length_encoding_parse_as_the_same_text(size: int) -> None:
    protocol = _protocol()
    direct = DirectText(protocol)
    payload = ("é" * (size // 2) + "x" * (size % 2)).encode()
    assert direct(payload)
    (frame,) = _parsed(bytes(protocol.transport.data))
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, payload)
    assert direct.frames == 1


def test_frames_are_counted_in_the_tally() -> None:
    direct = DirectText(_protocol())
    tally = SimpleNamespace(value=5)
    direct.tally = tally
    assert direct(b"{}") and direct(b"[]")
    assert (direct.frames, tally.value) == (2, 7)


@pytest.mark.parametrize(
    "state",
    [
        {"close_sent": True},
        {"disconnected": True},
        {"handshake_complete": False},
        {"conn": SimpleNamespace(state=State.CLOSING, extensions=[])},
        {"conn": SimpleNamespace(state=State.OPEN, extensions=["permessage-deflate"])},
    ],
)
def test_refuses_unless_the_socket_is_open_and_plain(state: dict[str, Any]) -> None:
    protocol = _protocol()
    for name, value in state.items():
        setattr(protocol, name, value)
    direct = DirectText(protocol)
    assert not direct(b"{}")
    assert protocol.transport.data == b"" and direct.frames == 0


def test_refuses_while_the_transport_is_paused_or_closing() -> None:
    protocol = _protocol()
    direct = DirectText(protocol)
    protocol.writable.clear()  # above the high-water mark: the caller queues instead
    assert not direct(b"{}")
    protocol.writable.set()
    protocol.transport.closing = True
    assert not direct(b"{}")
    assert protocol.transport.data == b""
