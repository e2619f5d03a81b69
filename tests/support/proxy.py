"""A TCP forwarder for end-to-end tests: put it between a client and a real server, then
cut the connections (as a dropped network would) and refuse new ones for a while.

    async with TcpProxy("127.0.0.1", server.port) as proxy:
        client = AsyncClient(proxy.base_url)
        ...
        proxy.refuse()   # new connections are reset at once
        proxy.cut()      # every open connection is aborted (no close frame, no FIN)
        ...
        proxy.hold()     # new connections are accepted but not forwarded (a stalled path)
        proxy.accept()   # forward again (held connections too)

It forwards bytes and nothing else: HTTP, the WebSocket upgrade and frames pass through
unchanged, so the client and the server speak to each other exactly as without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

__all__ = ["TcpProxy"]

CHUNK = 64 * 1024


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            writer.transport.abort()


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.host = host
        self.port = 0
        # Connections accepted and forwarded, refused, and cut over the proxy's life.
        self.accepted = 0
        self.refused = 0
        self.held = 0
        self.cuts = 0
        self._refusing = False
        self._gate: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._links)

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._on_client, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def refuse(self) -> None:
        """Reset every new connection at once, until `accept()`."""
        self._refusing = True

    def hold(self) -> None:
        """Accept new connections but forward nothing, until `accept()` (the client sees
        a connection that does not answer)."""
        self._refusing = False
        if self._gate is None:
            self._gate = asyncio.Event()

    def accept(self) -> None:
        """Forward new connections again, and those held meanwhile."""
        self._refusing = False
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    def cut(self) -> int:
        """Abort every open connection in both directions; returns how many."""
        links = list(self._links)
        for link in links:
            link.abort()
        self.cuts += len(links)
        return len(links)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    # -- forwarding ----------------------------------------------------------------------

    def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback starting a task of our own: asyncio's wrapper task for a
        # coroutine callback logs an error when it is cancelled (Python 3.11).
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gate = self._gate
        if gate is not None:
            self.held += 1
            await gate.wait()
        if self._refusing:
            self.refused += 1
            writer.transport.abort()
            await _closed(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            self.refused += 1
            writer.transport.abort()
            await _closed(writer)
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        self.accepted += 1
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._links.discard(link)
            link.abort()
            await _closed(writer)
            await _closed(up_writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF or an error, then half-close the other side (so a clean close of
    one peer reaches the other as a clean close)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        writer.transport.abort()


async def _closed(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
