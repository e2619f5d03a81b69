"""Small REST and WebSocket clients for end-to-end tests (deliberately not the SDK: these
speak the raw protocol so the tests pin the wire format itself)."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

PASSWORD = "correct horse battery"


@dataclass
class User:
    id: str
    username: str
    token: str
    refresh: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_user(http: httpx.AsyncClient, api: str, prefix: str = "u") -> User:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    r = await http.post(
        f"{api}/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    r = await http.post(f"{api}/auth/login", json={"login": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    return User(body["user"]["id"], name, body["access_token"], body["refresh_token"])


class Ws:
    """One raw protocol session: `call` sends a request and returns its reply; pushes seen
    meanwhile are kept in order for `push`."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self._next_id = 0
        self.pushes: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, url: str, token: str | None = None, **kwargs: Any) -> Ws:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn = await websockets.connect(url, additional_headers=headers, **kwargs)
        return cls(conn)

    async def close(self) -> None:
        await self.conn.close()

    async def __aenter__(self) -> Ws:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send_raw(self, data: str | bytes) -> None:
        await self.conn.send(data)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.conn.recv(), timeout)
        value: dict[str, Any] = json.loads(frame)
        return value

    async def call(self, op: str, timeout: float = 5.0, **args: Any) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        await self.conn.send(json.dumps({"id": request_id, "op": op, **args}))
        return await self.reply(request_id, timeout)

    async def reply(self, request_id: int | None, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            frame = await self.recv(timeout)
            if "push" in frame:
                self.pushes.append(frame)
                continue
            if frame.get("id") == request_id:
                return frame

    async def ok(self, op: str, **args: Any) -> Any:
        reply = await self.call(op, **args)
        assert reply["ok"] is True, reply
        return reply["result"]

    async def push(self, timeout: float = 5.0) -> dict[str, Any]:
        if self.pushes:
            return self.pushes.pop(0)
        while True:
            frame = await self.recv(timeout)
            if "push" in frame:
                return frame

    async def pushes_until(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        return [await self.push(timeout) for _ in range(count)]

    async def no_push(self, wait: float = 0.5) -> None:
        """Assert nothing arrives for `wait` seconds."""
        assert not self.pushes, self.pushes
        try:
            frame = await self.recv(wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {frame}")

    async def closed_with(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; the close code it sent."""
        try:
            while True:
                await asyncio.wait_for(self.conn.recv(), timeout)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None
