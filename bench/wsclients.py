"""A load-generator process holding many WebSocket clients, driven over stdin/stdout by
one JSON command per line (bench/sockets.py drives several of these at once, so that the
clients do not all share one core's event loop).

Commands: `open` (connect and subscribe; `kind` says which protocol: plaza, litestar,
socketio or floor), `wait` (until every socket holds the given post numbers), `arrivals`
(when each post reached each socket: CLOCK_MONOTONIC seconds, comparable across the
processes of one machine), `drop` (abort every connection at once, no close handshake,
keeping each feed's last offset), `resume` (reconnect them all with `since`), `stats`,
`close`. A post is recognised by "bench-<n> " in its content, in every protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

SEQ = re.compile(rb"bench-(\d+) ")


@dataclass
class Client:
    url: str
    token: str | None
    channels: list[str]
    conn: ClientConnection | None = None
    arrivals: dict[int, float] = field(default_factory=dict)
    duplicates: int = 0
    since: dict[str, str] | None = None  # the feed's last {offset, epoch} (plaza)
    reader: asyncio.Task[None] | None = None


class Holder:
    def __init__(self, kind: str, compression: bool) -> None:
        self.kind, self.compression = kind, compression
        self.clients: list[Client] = []
        self.changed = asyncio.Event()

    # -- connecting ----------------------------------------------------------------------

    async def connect(self, client: Client, resume: bool = False) -> None:
        headers = {"Authorization": f"Bearer {client.token}"} if client.token else {}
        url = client.url
        if self.kind == "socketio":
            url = f"{url}/socket.io/?EIO=4&transport=websocket"
        conn = await websockets.connect(
            url,
            additional_headers=headers,
            compression="deflate" if self.compression else None,
            open_timeout=60,
            max_queue=None,
            ping_interval=None,  # the server pings; a client that answers is enough
        )
        try:
            if self.kind == "plaza":
                await self._subscribe(client, conn, resume)
            elif self.kind == "socketio":
                await asyncio.wait_for(conn.recv(), 30)  # engine.io open
                await conn.send("40")
                while not str(await asyncio.wait_for(conn.recv(), 30)).startswith("40"):
                    pass
            else:  # litestar, floor: the server says when the socket is subscribed
                await asyncio.wait_for(conn.recv(), 30)
        except BaseException:
            await conn.close()
            raise
        client.conn = conn
        client.reader = asyncio.create_task(self._read(client, conn))

    async def _subscribe(self, client: Client, conn: ClientConnection, resume: bool) -> None:
        for request_id, channel in enumerate(client.channels, start=1):
            request: dict[str, Any] = {"id": request_id, "op": "subscribe", "channel": channel}
            if resume and channel == "feed" and client.since is not None:
                request["since"] = client.since
            await conn.send(json.dumps(request))
            while True:
                frame = await asyncio.wait_for(conn.recv(), 60)
                reply = json.loads(frame)
                if reply.get("id") == request_id:
                    break
                self._push(client, frame if isinstance(frame, bytes) else frame.encode())
            if reply.get("ok") is not True:
                raise RuntimeError(f"subscribe {channel!r} failed: {reply}")
            result = reply["result"]
            if channel == "feed":
                if resume and client.since is not None and not result.get("recovered"):
                    raise RuntimeError(f"not recovered: {result}")
                for push in result.get("events", []):
                    self._push(client, json.dumps(push).encode())
                if client.since is None or not result.get("events"):
                    client.since = {"offset": result["offset"], "epoch": result["epoch"]}

    def _push(self, client: Client, frame: bytes) -> None:
        arrived = time.monotonic()
        match = SEQ.search(frame)
        if match is None:
            return
        seq = int(match.group(1))
        if seq in client.arrivals:
            client.duplicates += 1
        else:
            client.arrivals[seq] = arrived
        if self.kind == "plaza":
            push = json.loads(frame)
            if push.get("channel") == "feed" and "offset" in push:
                client.since = {"offset": push["offset"], "epoch": push["epoch"]}
        self.changed.set()

    async def _read(self, client: Client, conn: ClientConnection) -> None:
        try:
            async for frame in conn:
                data = frame if isinstance(frame, bytes) else frame.encode()
                if self.kind == "socketio" and data == b"2":
                    await conn.send("3")  # engine.io heartbeat
                    continue
                self._push(client, data)
        except websockets.ConnectionClosed:
            pass

    async def open_all(self, specs: list[list[Any]], concurrency: int) -> dict[str, Any]:
        self.clients = [Client(url, token, channels) for url, token, channels in specs]
        return await self._connect_all(concurrency, resume=False)

    async def _connect_all(self, concurrency: int, resume: bool) -> dict[str, Any]:
        slots = asyncio.Semaphore(concurrency)
        errors: list[str] = []
        started = time.monotonic()

        async def one(client: Client) -> None:
            async with slots:
                try:
                    await self.connect(client, resume)
                except Exception as error:
                    errors.append(f"{type(error).__name__}: {error}"[:300])

        await asyncio.gather(*(one(c) for c in self.clients))
        ext = "none"
        first = next((c.conn for c in self.clients if c.conn is not None), None)
        if first is not None and first.response is not None:
            ext = first.response.headers.get("Sec-WebSocket-Extensions") or "none"
        return {
            "opened": sum(1 for c in self.clients if c.conn is not None),
            "failed": len(errors),
            "errors": errors[:3],
            "seconds": round(time.monotonic() - started, 3),
            "started": started,
            "extensions": ext,
        }

    # -- measuring -----------------------------------------------------------------------

    async def wait(self, seqs: list[int], timeout: float) -> dict[str, Any]:
        wanted = set(seqs)
        deadline = time.monotonic() + timeout
        while True:
            short = sum(1 for c in self.clients if not wanted <= c.arrivals.keys())
            if short == 0 or time.monotonic() >= deadline:
                break
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.monotonic()))
        last = [
            max((c.arrivals[s] for s in wanted if s in c.arrivals), default=0.0)
            for c in self.clients
        ]
        return {"short": short, "all_current_at": max(last, default=0.0)}

    def arrivals(self) -> dict[str, Any]:
        return {
            "arrivals": [sorted(c.arrivals.items()) for c in self.clients],
            "duplicates": sum(c.duplicates for c in self.clients),
            "closed": sum(1 for c in self.clients if c.conn is None or c.conn.close_code),
        }

    async def drop(self) -> dict[str, Any]:
        for c in self.clients:
            if c.conn is not None:
                c.conn.transport.abort()
        for c in self.clients:
            if c.reader is not None:
                await asyncio.gather(c.reader, return_exceptions=True)
            c.conn = None
        return {"dropped": len(self.clients), "at": time.monotonic()}

    async def close(self) -> None:
        await asyncio.gather(
            *(c.conn.close() for c in self.clients if c.conn is not None), return_exceptions=True
        )
        for c in self.clients:
            if c.reader is not None:
                c.reader.cancel()


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def main() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    holder: Holder | None = None

    def reply(value: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    while line := await reader.readline():
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "open":
                holder = Holder(cmd["kind"], cmd.get("compression", False))
                reply(await holder.open_all(cmd["sockets"], cmd.get("concurrency", 50)))
            elif holder is None:
                reply({"error": "open first"})
            elif op == "wait":
                reply(await holder.wait(cmd["seqs"], cmd.get("timeout", 30.0)))
            elif op == "arrivals":
                reply(holder.arrivals())
            elif op == "drop":
                reply(await holder.drop())
            elif op == "resume":
                reply(await holder._connect_all(cmd.get("concurrency", 2000), resume=True))
            elif op == "stats":
                reply(
                    {
                        "open": sum(1 for c in holder.clients if c.conn and not c.conn.close_code),
                        "rss_max_kib": _rss_kib(),
                    }
                )
            elif op == "close":
                await holder.close()
                reply({"closed": True})
                return
        except Exception as error:
            reply({"error": f"{type(error).__name__}: {error}"})


if __name__ == "__main__":
    asyncio.run(main())
