"""Live sessions of this process, by user: socket limits, logout and graceful shutdown."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Protocol

from server.ws.frames import CloseCode


class LiveSession(Protocol):
    @property
    def user_id(self) -> int | None: ...

    @property
    def session_id(self) -> str | None: ...

    async def close(self, code: int, reason: str, *, warn: bool = False) -> None: ...


class SessionRegistry:
    """Implements the domain's SessionRevoker for this process's sockets."""

    def __init__(self, max_per_user: int) -> None:
        self._max_per_user = max_per_user
        self._by_user: defaultdict[int, set[LiveSession]] = defaultdict(set)
        self._all: set[LiveSession] = set()

    def __len__(self) -> int:
        return len(self._all)

    def track(self, session: LiveSession) -> None:
        """Every open socket, authenticated or not (for shutdown)."""
        self._all.add(session)

    def add_user(self, session: LiveSession, user_id: int) -> bool:
        """False when the user already has the maximum of sockets here."""
        sessions = self._by_user[user_id]
        if session in sessions:
            return True
        if len(sessions) >= self._max_per_user:
            if not sessions:
                del self._by_user[user_id]
            return False
        sessions.add(session)
        return True

    def remove(self, session: LiveSession) -> None:
        self._all.discard(session)
        user_id = session.user_id
        if user_id is not None:
            sessions = self._by_user.get(user_id)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del self._by_user[user_id]

    def count(self, user_id: int) -> int:
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
