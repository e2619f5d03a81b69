"""Being the one process that does something for a database: the outbox relay of a fleet,
or the only `plaza serve` of a database without Redis.

PostgreSQL: a session advisory lock on a connection of its own, held as long as that
connection lives (a process that dies, or loses its connection, lets go at once), which
also LISTENs for the outbox's NOTIFY. SQLite: an embedded database has one process; a
file lock beside the database keeps a second `plaza serve` from using it at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable
from typing import Any, ClassVar

import asyncpg

log = logging.getLogger("plaza.storage")

# Any constants; they only have to be the same in every Plaza process.
RELAY_LOCK_KEY = 0x504C5A52454C  # "PLZREL"
EMBEDDED_LOCK_KEY = 0x504C5A454D42  # "PLZEMB"
# Connecting and asking for the lock must not hang a start or a relay loop on a database
# that does not answer.
CONNECT_TIMEOUT_S = 5.0
# The leader checks its own connection this often: a connection that died silently (a
# network cut) still holds the lock in PostgreSQL's eyes until TCP gives up, but it must
# stop relaying as soon as it cannot reach the database.
CHECK_EVERY_S = 5.0


class LocalLeadership:
    """SQLite: one process owns an embedded database; among the candidates of this process
    (tests run several) the first to ask holds the role until it releases it."""

    _holders: ClassVar[dict[str, LocalLeadership]] = {}

    def __init__(self, name: str) -> None:
        self._name = name

    async def hold(self, *, on_notify: Callable[[], object] | None = None) -> bool:
        holder = self._holders.setdefault(self._name, self)
        return holder is self

    async def release(self) -> None:
        if self._holders.get(self._name) is self:
            del self._holders[self._name]


class PgLeadership:
    """A PostgreSQL session advisory lock `key` on a connection of its own."""

    def __init__(self, dsn: str, key: int, *, listen: str | None = None) -> None:
        self._dsn = dsn
        self._key = key
        self._listen = listen
        self._conn: Any = None
        self._leading = False
        self._checked = 0.0
        # One operation at a time on the connection.
        self._lock = asyncio.Lock()

    async def hold(self, *, on_notify: Callable[[], object] | None = None) -> bool:
        async with self._lock:
            return await self._hold(on_notify)

    async def _hold(self, on_notify: Callable[[], object] | None) -> bool:
        if self._leading and await self._alive():
            return True
        if self._conn is None or self._conn.is_closed():
            self._leading = False
            self._conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)
        got = await self._conn.fetchval(
            "SELECT pg_try_advisory_lock($1)", self._key, timeout=CONNECT_TIMEOUT_S
        )
        if got and self._listen is not None and on_notify is not None:
            callback = on_notify

            def notified(*_: object) -> None:
                callback()

            await self._conn.add_listener(self._listen, notified)
        self._leading = bool(got)
        self._checked = time.monotonic()
        return self._leading

    async def _alive(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            self._leading = False
            return False
        if time.monotonic() - self._checked < CHECK_EVERY_S:
            return True
        try:
            await self._conn.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT_S)
        except Exception:
            log.warning("lost the connection that holds advisory lock %#x", self._key)
            await self._drop()
            return False
        self._checked = time.monotonic()
        return True

    async def _drop(self) -> None:
        conn, self._conn, self._leading = self._conn, None, False
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()

    async def release(self) -> None:
        async with self._lock:
            conn, self._conn, self._leading = self._conn, None, False
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await conn.close()


class FileLock:
    """An exclusive, non-blocking lock on a file: held until released or the process dies."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    async def hold(self, *, on_notify: Callable[[], object] | None = None) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
