"""Live sessions of this process, by user: socket limits, logout and graceful shutdown.

The per-user socket count is a `SocketCounts`: this process's own when embedded, shared by
the fleet in Redis otherwise (server/fleet.py), so that a user's 11th socket is refused
wherever it lands.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict
from typing import Protocol

from server.ws.frames import CloseCode


class LiveSession(Protocol):
    @property
    def user_id(self) -> int | None: ...

    @property
    def session_id(self) -> str | None: ...

    async def close(self, code: int, reason: str, *, warn: bool = False) -> None: ...


class SocketCounts(Protocol):
    """How many sockets each user holds, against the per-user maximum."""

    async def add(self, user_id: int, socket_id: str) -> bool:
        """Count one more socket of the user; False (nothing counted) at the maximum."""
        ...

    async def remove(self, user_id: int, socket_id: str) -> None: ...


class LocalSocketCounts:
    """One process's count: the embedded server is the only one."""

    def __init__(self, max_per_user: int) -> None:
        self._max = max_per_user
        self._sockets: defaultdict[int, set[str]] = defaultdict(set)

    async def add(self, user_id: int, socket_id: str) -> bool:
        sockets = self._sockets[user_id]
        if socket_id in sockets:
            return True
        if len(sockets) >= self._max:
            return False
        sockets.add(socket_id)
        return True

    async def remove(self, user_id: int, socket_id: str) -> None:
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            sockets.discard(socket_id)
            if not sockets:
                del self._sockets[user_id]


class SessionRegistry:
    """Implements the domain's SessionRevoker for this process's sockets."""

    def __init__(self, counts: SocketCounts) -> None:
        self._counts = counts
        self._by_user: defaultdict[int, set[LiveSession]] = defaultdict(set)
        self._all: set[LiveSession] = set()
        # A socket's id in the shared count: unique across the fleet.
        self._ids: dict[LiveSession, str] = {}

    def __len__(self) -> int:
        return len(self._all)

    def track(self, session: LiveSession) -> None:
        """Every open socket, authenticated or not (for shutdown)."""
        self._all.add(session)

    async def add_user(self, session: LiveSession, user_id: int) -> bool:
        """False when the user already has the maximum of sockets."""
        sessions = self._by_user[user_id]
        if session in sessions:
            return True
        socket_id = self._ids.get(session) or self._ids.setdefault(session, secrets.token_hex(16))
        if not await self._counts.add(user_id, socket_id):
            if not sessions:
                del self._by_user[user_id]
            self._ids.pop(session, None)
            return False
        sessions.add(session)
        return True

    async def remove(self, session: LiveSession) -> None:
        self._all.discard(session)
        socket_id = self._ids.pop(session, None)
        user_id = session.user_id
        if user_id is None:
            return
        sessions = self._by_user.get(user_id)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._by_user[user_id]
        if socket_id is not None:
            await self._counts.remove(user_id, socket_id)

    def count(self, user_id: int) -> int:
        """Sockets of the user in this process."""
        return len(self._by_user.get(user_id, ()))

    async def revoke_session(self, user_id: int, session_id: str) -> None:
        """Logout: sockets authenticated by that login close with 4401."""
        doomed = [s for s in self._by_user.get(user_id, ()) if s.session_id == session_id]
        for session in doomed:
            await session.close(CloseCode.UNAUTHENTICATED, "logged out")

    async def revoke_user(self, user_id: int) -> None:
        """Logout everywhere / password change: every socket of the user closes with 4401."""
        for session in list(self._by_user.get(user_id, ())):
            await session.close(CloseCode.UNAUTHENTICATED, "logged out everywhere")

    async def close_all(self) -> None:
        """Shutdown: every socket is told `close_soon`, then closed with 4000 so clients
        resume on another instance."""
        sessions = list(self._all)
        await asyncio.gather(
            *(s.close(CloseCode.GOING_AWAY, "server going away", warn=True) for s in sessions),
            return_exceptions=True,
        )
